"""Tests of the chenu-desktop command line, in-process and as a real worker process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from chenu_desktop import TaskQueue, TaskRecord, TaskStatus, __version__, open_engine
from chenu_desktop.backend import sqlite_url
from chenu_desktop.cli import main
from chenu_desktop.config import user_data_dir
from chenu_desktop.registry import default_registry

TASK_MODULE = "cli_test_tasks"
TASK_MODULE_SOURCE = '''
"""Tasks that the command-line tests submit and run."""

import time

from chenu_desktop import background_task


@background_task(name="cli_echo")
def cli_echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@background_task(name="cli_add", queue="high")
def cli_add(a: int, b: int) -> int:
    return a + b


@background_task(name="cli_fail")
def cli_fail() -> None:
    raise RuntimeError("cli_fail raised on purpose")


@background_task(name="cli_deploy", queue="governance", requires_governance=True)
def cli_deploy(target: str, approved_by: str = "") -> str:
    return f"{target} approved by {approved_by}"


@background_task(name="cli_hold")
def cli_hold(seconds: float = 60.0) -> None:
    time.sleep(seconds)
'''
TASK_NAMES = ("cli_echo", "cli_add", "cli_fail", "cli_deploy", "cli_hold")
#: Upper bound for a worker process to run a task or to stop, on a slow machine.
PROCESS_TIMEOUT = 30.0


# --- helpers -----------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run a command with --json and return the parsed document on stdout."""
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def wait_until(
    condition: Callable[[], Any], description: str, timeout: float = PROCESS_TIMEOUT
) -> Any:
    """Poll `condition` until it returns a true value, or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {description}"
            )
        time.sleep(0.05)


def wait_for_status(backend: str, task_id: str, *statuses: TaskStatus) -> TaskRecord:
    with open_engine(backend) as engine:

        def reached() -> TaskRecord | None:
            record = engine.task_service.get_status(task_id)
            return record if record.status in statuses else None

        names = " or ".join(status.value for status in statuses)
        return wait_until(reached, f"task {task_id} to be {names}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """A ``python -m chenu_desktop`` process whose output goes to a log file."""

    def __init__(self, tmp_path: Path, backend: str, *argv: str) -> None:
        self.log_path = tmp_path / "worker.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(tmp_path), env.get("PYTHONPATH")) if part
        )
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chenu_desktop", "--backend", backend, *argv],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: int) -> int:
        """Send `signum` and return the exit status, failing if it takes too long."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker did not exit within {PROCESS_TIMEOUT} s of {signum!r}:\n"
                + self.output()
            ) from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=PROCESS_TIMEOUT)
        self._log.close()


@pytest.fixture
def task_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Write the test task module into tmp_path and unregister its tasks afterwards."""
    (tmp_path / f"{TASK_MODULE}.py").write_text(TASK_MODULE_SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield TASK_MODULE
    sys.modules.pop(TASK_MODULE, None)
    for name in TASK_NAMES:
        default_registry.remove(name)


@pytest.fixture
def backend(sqlite_path: Path) -> str:
    return sqlite_url(sqlite_path)


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(backend: str, *argv: str) -> WorkerProcess:
        worker = WorkerProcess(tmp_path, backend, *argv)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def submit(capsys: pytest.CaptureFixture[str], backend: str, *argv: str) -> str:
    document = run_json(
        capsys, "--backend", backend, "tasks", "submit", *argv, f"--tasks={TASK_MODULE}"
    )
    return document["task_id"]


# --- global options ----------------------------------------------------------


def test_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"chenu-desktop {__version__}"


def test_tasks_help_lists_actions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "tasks", "--help")
    assert code == 0
    for action in ("list", "show", "submit", "cancel", "retry", "approve", "reject",
                   "stats", "registered", "cleanup"):  # fmt: skip
        assert action in out


def test_usage_error_keeps_argparse_exit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "tasks", "frobnicate")
    assert code == 2
    assert out == ""
    assert "usage:" in err
    assert "Traceback" not in err


def test_backend_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {name: tmp_path / f"{name}.db" for name in ("flag", "env", "file")}
    config_path = tmp_path / "chenu.toml"
    config_path.write_text(
        f'backend = "{sqlite_url(paths["file"])}"\n', encoding="utf-8"
    )
    monkeypatch.setenv("CHENU_BACKEND", sqlite_url(paths["env"]))
    base = [
        "--config",
        str(config_path),
        "tasks",
        "submit",
        "cleanup_old_data",
        "--json",
    ]

    submitted = {}
    code, out, err = run_cli(capsys, "--backend", sqlite_url(paths["flag"]), *base)
    assert code == 0, err
    submitted["flag"] = json.loads(out)["task_id"]
    code, out, err = run_cli(capsys, *base)
    assert code == 0, err
    submitted["env"] = json.loads(out)["task_id"]
    monkeypatch.delenv("CHENU_BACKEND")
    code, out, err = run_cli(capsys, *base)
    assert code == 0, err
    submitted["file"] = json.loads(out)["task_id"]
    code, out, err = run_cli(capsys, "tasks", "submit", "cleanup_old_data", "--json")
    assert code == 0, err
    submitted["default"] = json.loads(out)["task_id"]

    paths["default"] = user_data_dir() / "chenu.db"
    for name, path in paths.items():
        with open_engine(sqlite_url(path)) as engine:
            ids = [record.task_id for record in engine.task_service.list_tasks()]
        assert ids == [submitted[name]], name


def test_backend_flag_wins_over_invalid_env(
    backend: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHENU_BACKEND", "ftp://127.0.0.1/queue")
    code, _, err = run_cli(capsys, "--backend", backend, "tasks", "list")
    assert code == 0, err
    code, _, err = run_cli(capsys, "tasks", "list")
    assert code == 2
    assert "unsupported backend scheme 'ftp'" in err


# --- tasks commands ----------------------------------------------------------


def test_submit_decodes_key_value_arguments(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(
        capsys, backend, "cli_echo",
        "count=5", "ratio=0.5", "flag=true", "nothing=null", "items=[1, 2]",
        'quoted="7"', "word=hello", "empty=", "sentence=two words", "nan=NaN",
    )  # fmt: skip
    record = run_json(capsys, "--backend", backend, "tasks", "show", task_id)
    assert record["kwargs"] == {
        "count": 5,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "items": [1, 2],
        "quoted": "7",
        "word": "hello",
        "empty": "",
        "sentence": "two words",
        "nan": "NaN",
    }


def test_submit_options_json(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(
        capsys, backend, "cli_echo", "--args-json", '[1, "a"]',
        "--kwargs-json", '{"key": {"nested": true}}', "extra=3",
        "--priority", "2", "--countdown", "3600", "--queue", "low",
        "--expires-in", "60",
    )  # fmt: skip
    record = run_json(capsys, "--backend", backend, "tasks", "show", task_id)
    assert record["task_id"] == task_id
    assert record["args"] == [1, "a"]
    assert record["kwargs"] == {"key": {"nested": True}, "extra": 3}
    assert record["priority"] == 2
    assert record["status"] == "scheduled"
    assert record["eta"] > record["created_at"] + 3000
    assert record["queue"] == "low"
    assert record["expires_at"] == pytest.approx(record["eta"] + 60)


def test_submit_prints_bare_id(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "--backend", backend, "tasks", "submit", "cleanup_old_data", "days=3"
    )
    assert code == 0, err
    task_id = out.strip()
    with open_engine(backend) as engine:
        record = engine.task_service.get_status(task_id)
    assert record.task_name == "cleanup_old_data"
    assert record.kwargs == {"days": 3}


def test_list_filters_and_pages(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    echo_ids = [submit(capsys, backend, "cli_echo", f"n={n}") for n in range(3)]
    add_id = submit(capsys, backend, "cli_add", "a=1", "b=2")
    command = ["--backend", backend, "tasks", "list"]

    everything = run_json(capsys, *command)
    assert everything["total"] == 4
    assert [t["task_id"] for t in everything["tasks"]] == [add_id, *reversed(echo_ids)]

    by_queue = run_json(capsys, *command, "--queue", "high")
    assert [t["task_id"] for t in by_queue["tasks"]] == [add_id]
    by_name = run_json(capsys, *command, "--name", "cli_echo")
    assert by_name["total"] == 3
    by_status = run_json(capsys, *command, "--status", "pending")
    assert by_status["total"] == 4
    assert run_json(capsys, *command, "--status", "failure")["total"] == 0
    by_text = run_json(capsys, *command, "--text", add_id[:10])
    assert [t["task_id"] for t in by_text["tasks"]] == [add_id]

    page = run_json(capsys, *command, "--limit", "2", "--offset", "1")
    assert page["total"] == 4
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [t["task_id"] for t in page["tasks"]] == [echo_ids[2], echo_ids[1]]


def test_list_prints_table(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(capsys, backend, "cli_add", "a=1", "b=2")
    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "list")
    assert code == 0, err
    header, row, footer = out.splitlines()
    assert header.split() == ["ID", "NAME", "QUEUE", "STATUS", "PRIORITY", "CREATED",
                              "DURATION"]  # fmt: skip
    assert row.split()[:5] == [task_id, "cli_add", "high", "pending", "6"]
    assert footer == "tasks 1-1 of 1"

    code, out, _ = run_cli(capsys, "--backend", backend, "tasks", "list", "--name", "x")
    assert code == 0
    assert out.strip() == "no tasks match"


def test_show_prints_every_field_and_traceback(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(capsys, backend, "cli_fail")
    with open_engine(backend) as engine:
        engine.start_workers({TaskQueue.DEFAULT})
        record = wait_for_status(backend, task_id, TaskStatus.FAILURE)
    assert record.traceback is not None

    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "show", task_id)
    assert code == 0, err
    lines = out.splitlines()
    for field in record.to_dict():
        assert any(line.startswith(f"{field}:") for line in lines), field
    assert f"task_id: {task_id}" in lines
    assert "status: failure" in lines
    assert "error: RuntimeError: cli_fail raised on purpose" in out
    assert record.traceback.rstrip("\n") in out
    assert "Traceback (most recent call last):" in out


def test_cancel_and_retry_json(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(capsys, backend, "cli_add", "a=1", "b=2")
    cancelled = run_json(capsys, "--backend", backend, "tasks", "cancel", task_id)
    assert cancelled["task_id"] == task_id
    assert cancelled["status"] == "cancelled"

    retried = run_json(
        capsys,
        "--backend",
        backend,
        "tasks",
        "retry",
        task_id,
        f"--tasks={TASK_MODULE}",
    )
    assert retried["retry_of"] == task_id
    new_record = run_json(
        capsys, "--backend", backend, "tasks", "show", retried["task_id"]
    )
    assert new_record["retry_of"] == task_id
    assert new_record["kwargs"] == {"a": 1, "b": 2}
    assert new_record["status"] == "pending"

    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "cancel", task_id)
    assert code == 2
    assert out == ""
    assert "there is nothing to cancel" in err


def test_retry_prints_new_id(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(capsys, backend, "cli_echo")
    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "cancel", task_id)
    assert code == 0, err
    assert out.strip() == f"task {task_id} cancelled"
    code, out, err = run_cli(
        capsys,
        "--backend",
        backend,
        "tasks",
        "retry",
        task_id,
        f"--tasks={TASK_MODULE}",
    )
    assert code == 0, err
    new_id = out.strip()
    with open_engine(backend) as engine:
        assert engine.task_service.get_status(new_id).retry_of == task_id


def test_approve_and_reject_json(
    backend: str,
    task_module: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_path = tmp_path / "chenu.toml"
    config_path.write_text('operator = "ops-lead"\n', encoding="utf-8")
    prefix = ["--backend", backend, "--config", str(config_path), "tasks"]
    first = submit(capsys, backend, "cli_deploy", "target=prod")
    second = submit(capsys, backend, "cli_deploy", "target=staging")

    approved = run_json(capsys, *prefix, "approve", first, "--reason", "release day")
    assert approved["status"] == "pending"
    assert approved["approved_by"] == "ops-lead"
    assert approved["approval_reason"] == "release day"

    rejected = run_json(
        capsys, *prefix, "reject", second, "--approver", "auditor", "--reason", "frozen"
    )
    assert rejected["status"] == "rejected"
    assert rejected["approved_by"] == "auditor"
    assert rejected["approval_reason"] == "frozen"

    code, _, err = run_cli(capsys, *prefix, "approve", second)
    assert code == 2
    assert "not awaiting approval" in err
    code, _, err = run_cli(capsys, *prefix, "reject", first)
    assert code == 2
    assert "--reason" in err


def test_stats_json_and_table(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    submit(capsys, backend, "cli_add", "a=1", "b=2")
    submit(capsys, backend, "cli_deploy", "target=prod")
    stats = run_json(capsys, "--backend", backend, "tasks", "stats")
    assert list(stats) == [queue.value for queue in TaskQueue]
    assert stats["high"]["counts"] == {"pending": 1}
    assert stats["governance"]["counts"] == {"awaiting_approval": 1}
    assert stats["low"]["paused"] is False
    for key in ("succeeded_last_hour", "failed_last_hour", "throughput_per_minute",
                "mean_duration", "p95_duration", "oldest_waiting_age",
                "workers_busy", "workers_total"):  # fmt: skip
        assert key in stats["default"], key

    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "stats")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.startswith("QUEUE")
    assert "P95" in header
    assert [row.split()[0] for row in rows] == [queue.value for queue in TaskQueue]
    high = rows[1].split()
    assert high[1:6] == ["1", "0", "0", "0", "0"]
    governance = rows[0].split()
    assert governance[3] == "1"


def test_registered_lists_user_tasks(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = run_json(
        capsys, "--backend", backend, "tasks", "registered", f"--tasks={TASK_MODULE}"
    )
    by_name = {task["name"]: task for task in tasks}
    assert "cleanup_old_data" in by_name
    assert by_name["cli_add"]["queue"] == "high"
    assert by_name["cli_deploy"]["requires_governance"] is True

    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "registered")
    assert code == 0, err
    assert any(line.split()[:2] == ["cli_add", "high"] for line in out.splitlines())


def test_cleanup_json(
    backend: str,
    task_module: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_path = tmp_path / "chenu.toml"
    config_path.write_text("retention_days = 7\n", encoding="utf-8")
    prefix = ["--backend", backend, "--config", str(config_path), "tasks"]
    task_id = submit(capsys, backend, "cli_echo")
    run_json(capsys, *prefix, "cancel", task_id)

    by_default = run_json(capsys, *prefix, "cleanup")
    assert by_default == {"deleted": 0, "older_than_days": 7}
    now = run_json(capsys, *prefix, "cleanup", "--older-than-days", "0")
    assert now == {"deleted": 1, "older_than_days": 0.0}
    code, _, _ = run_cli(capsys, *prefix, "show", task_id)
    assert code == 2


def test_task_module_from_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "cwd_only_tasks.py").write_text(
        textwrap.dedent(
            """
            from chenu_desktop import background_task

            @background_task(name="cli_cwd_task")
            def cli_cwd_task() -> None:
                pass
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(folder)
    monkeypatch.setattr(
        sys, "path", [p for p in sys.path if p not in ("", str(folder))]
    )
    try:
        tasks = run_json(capsys, "tasks", "registered", "--tasks=cwd_only_tasks")
    finally:
        sys.modules.pop("cwd_only_tasks", None)
        default_registry.remove("cli_cwd_task")
    assert "cli_cwd_task" in [task["name"] for task in tasks]


# --- bad input and unavailable backends --------------------------------------


TASKS_OPTION = f"--tasks={TASK_MODULE}"
BAD_INPUT = {
    "unknown task": (
        ["tasks", "submit", TASKS_OPTION, "no_such_task"],
        "unknown task name 'no_such_task'",
    ),
    "unknown task hint": (
        ["tasks", "submit", "cli_echo"],
        "pass --tasks MODULE to import the module that registers it",
    ),
    "bad kwargs JSON": (
        ["tasks", "submit", TASKS_OPTION, "cli_echo", "--kwargs-json", "{bad"],
        "invalid --kwargs-json",
    ),
    "args not a list": (
        ["tasks", "submit", TASKS_OPTION, "cli_echo", "--args-json", '{"a": 1}'],
        "invalid --args-json",
    ),
    "NaN in args": (
        ["tasks", "submit", TASKS_OPTION, "cli_echo", "--args-json", "[NaN]"],
        "NaN",
    ),
    "missing argument": (
        ["tasks", "submit", TASKS_OPTION, "cli_add", "a=1"],
        "invalid arguments",
    ),
    "argument without value": (
        ["tasks", "submit", TASKS_OPTION, "cli_echo", "novalue"],
        "invalid task argument 'novalue'",
    ),
    "argument twice": (
        [
            "tasks",
            "submit",
            TASKS_OPTION,
            "cli_echo",
            "a=1",
            "--kwargs-json",
            '{"a": 2}',
        ],
        "given both",
    ),
    "priority out of range": (
        ["tasks", "submit", TASKS_OPTION, "cli_echo", "--priority", "12"],
        "invalid priority 12",
    ),
    "unknown id": (["tasks", "show", "0" * 32], "not found"),
    "approve unknown id": (["tasks", "approve", "0" * 32], "not found"),
    "bad submit queue": (
        ["tasks", "submit", TASKS_OPTION, "cli_echo", "--queue", "urgent"],
        "invalid queue 'urgent'",
    ),
    "bad queue name": (
        ["tasks", "list", "--queue", "urgent"],
        "invalid queue 'urgent'",
    ),
    "bad status": (["tasks", "list", "--status", "done"], "invalid status 'done'"),
    "bad limit": (["tasks", "list", "--limit", "0"], "invalid limit 0"),
    "negative cleanup age": (
        ["tasks", "cleanup", "--older-than-days", "-1"],
        "invalid older_than_days",
    ),
    "worker bad queue": (
        ["worker", "--queues", "high,urgent"],
        "invalid queue 'urgent'",
    ),
    "worker count too high": (
        ["worker", "--workers", "default=65"],
        "invalid worker count 65",
    ),
    "worker count not a number": (
        ["worker", "--workers", "default=many"],
        "invalid worker count 'many'",
    ),
    "worker count outside queues": (
        ["worker", "--queues", "high", "--workers", "low=1"],
        "not in --queues",
    ),
    "worker missing module": (
        ["worker", "--tasks", "no_such_module_for_cli_tests"],
        "importing task module 'no_such_module_for_cli_tests' failed",
    ),
}


@pytest.mark.parametrize("argv, expected", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_exits_2(
    argv: list[str],
    expected: str,
    backend: str,
    task_module: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "--backend", backend, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


BAD_BACKEND = {
    "scheme": (["--backend", "ftp://127.0.0.1/queue"], "unsupported backend scheme"),
    "empty": (["--backend", " "], "empty backend URL"),
}


@pytest.mark.parametrize("argv, expected", BAD_BACKEND.values(), ids=BAD_BACKEND.keys())
def test_bad_backend_exits_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, *argv, "tasks", "list")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


BAD_CONFIG = {
    "retention zero": ("retention_days = 0\n", "invalid retention_days 0"),
    "unknown key": ("colour = 'blue'\n", "unknown key 'colour'"),
    "invalid TOML": ("backend = \n", "invalid TOML"),
    "worker count": ("[workers]\ndefault = -1\n", "invalid worker count -1"),
}


@pytest.mark.parametrize("text, expected", BAD_CONFIG.values(), ids=BAD_CONFIG.keys())
def test_bad_config_file_exits_2(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "chenu.toml"
    config_path.write_text(text, encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(config_path), "tasks", "stats")
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


def test_missing_config_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "--config", str(tmp_path / "absent.toml"), "tasks", "list"
    )
    assert code == 2
    assert "not found" in err


def test_redis_down_exits_1_and_masks_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    code, out, err = run_cli(capsys, "--backend", url, "tasks", "list")
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "redis://:***@127.0.0.1" in err
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_sqlite_unopenable_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A folder in place of the database file: SQLite cannot open it.
    folder = tmp_path / "not-a-file.db"
    folder.mkdir()
    code, out, err = run_cli(capsys, "--backend", sqlite_url(folder), "tasks", "stats")
    assert code == 1
    assert out == ""
    assert sqlite_url(folder) in err
    assert "Traceback" not in err


# --- worker processes --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_worker_process_runs_and_stops_on_sigterm(
    kind: str,
    request: pytest.FixtureRequest,
    task_module: str,
    worker_process: Callable[..., WorkerProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if kind == "sqlite":
        backend = request.getfixturevalue("backend")
        queue_options = ["--queues", "high,default", "--workers", "high=1", "default=1"]
    else:
        backend = request.getfixturevalue("redis_url")
        queue_options = []
    worker = worker_process(backend, "worker", "--tasks", task_module, *queue_options)

    add_id = submit(capsys, backend, "cli_add", "a=2", "b=3")
    fail_id = submit(capsys, backend, "cli_fail")
    added = wait_for_status(backend, add_id, TaskStatus.SUCCESS, TaskStatus.FAILURE)
    assert added.status is TaskStatus.SUCCESS, added.error
    assert added.result == 5
    failed = wait_for_status(backend, fail_id, TaskStatus.SUCCESS, TaskStatus.FAILURE)
    assert failed.status is TaskStatus.FAILURE

    assert worker.stop(signal.SIGTERM) == 0
    output = worker.output()
    assert f"worker running on {backend}" in output
    if kind == "sqlite":
        assert "queues high, default; worker threads high=1, default=1" in output
    assert "SIGTERM received: stopping" in output
    assert "worker stopped" in output
    assert "Traceback" not in output.split("SIGTERM received")[1]


@pytest.mark.slow
def test_bare_command_runs_headless_until_sigint(
    backend: str, worker_process: Callable[..., WorkerProcess]
) -> None:
    worker = worker_process(backend)
    with open_engine(backend) as engine:
        wait_until(
            lambda: {w.pid for w in engine.workers()} == {worker.process.pid},
            "heartbeats of the headless worker",
        )
        queues = {w.queue for w in engine.workers()}
    assert queues == set(TaskQueue)

    assert worker.stop(signal.SIGINT) == 0
    output = worker.output()
    assert "the desktop window is not part of this package yet" in output
    assert "SIGINT received: stopping" in output


@pytest.mark.slow
def test_second_sigint_exits_at_once(
    backend: str,
    task_module: str,
    worker_process: Callable[..., WorkerProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker = worker_process(
        backend, "worker", "--tasks", task_module, "--shutdown-timeout", "60"
    )
    task_id = submit(capsys, backend, "cli_hold", "seconds=60")
    wait_for_status(backend, task_id, TaskStatus.RUNNING)

    worker.process.send_signal(signal.SIGINT)
    wait_until(
        lambda: "SIGINT received: stopping" in worker.output(), "the stop message"
    )
    started = time.monotonic()
    assert worker.stop(signal.SIGINT) == 128 + signal.SIGINT
    assert time.monotonic() - started < 10
    assert "SIGINT received again: exiting without waiting" in worker.output()
