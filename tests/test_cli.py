"""Tests of the chenu-desktop command line, in-process and as a real worker process."""

from __future__ import annotations

import datetime as dt
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
from chenu_desktop.cli_schedules import format_relative
from chenu_desktop.config import user_data_dir
from chenu_desktop.registry import default_registry

from cli_helpers import run_cli, run_json

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
                              "DURATION", "ARGUMENTS", "RESULT"]  # fmt: skip
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
    "window missing module": (
        ["--headless", "--tasks", "no_such_module_for_cli_tests"],
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


def test_window_tasks_before_command_rejected(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "--backend", backend, "--tasks=cli_tasks_nowhere", "tasks", "list"
    )
    assert code == 2
    assert out == ""
    assert "--tasks before the command 'tasks' applies to the window only" in err
    assert "worker --tasks=MODULE" in err
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


# --- schedules commands ------------------------------------------------------


def schedules(
    capsys: pytest.CaptureFixture[str], backend: str, *argv: str
) -> tuple[int, str, str]:
    return run_cli(capsys, "--backend", backend, "schedules", *argv)


def schedules_json(capsys: pytest.CaptureFixture[str], backend: str, *argv: str) -> Any:
    return run_json(capsys, "--backend", backend, "schedules", *argv)


def add_nightly(capsys: pytest.CaptureFixture[str], backend: str, *argv: str) -> Any:
    """Add the schedule ``nightly``: cleanup_old_data(days=3) at 02:00 UTC."""
    return schedules_json(
        capsys,
        backend,
        "add",
        "nightly",
        "cleanup_old_data",
        "0 2 * * *",
        "days=3",
        "--timezone",
        "UTC",
        *argv,
    )


def table_rows(text: str) -> list[dict[str, str]]:
    """Split a table of `format_table` into rows of cells, keyed by column header.

    A header cell may contain single spaces, so columns start after two spaces.
    """
    header, *lines = text.splitlines()
    names = header.split("  ")
    names = [name.strip() for name in names if name.strip()]
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    return [
        {name: line[start:end].strip() for name, start, end in zip(names, starts, ends)}
        for line in lines
    ]


def fire_at_hour_and_minute(text: str) -> str:
    return dt.datetime.fromisoformat(text).strftime("%H:%M")


def test_schedules_help_lists_actions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schedules", "--help")
    assert code == 0
    for action in ("list", "add", "update", "remove", "enable", "disable", "run",
                   "history", "preview"):  # fmt: skip
        assert action in out


def test_schedules_add_json_stores_options(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    added = schedules_json(
        capsys, backend, "add", "nightly", "cli_echo", "30 2 * * *",
        "--timezone", "europe/paris", "--misfire", "run_once",
        "--grace-seconds", "120", "--kwargs-json", '{"size": 3}', "label=night",
        TASKS_OPTION,
    )  # fmt: skip
    assert added["name"] == "nightly"
    assert added["task_name"] == "cli_echo"
    assert added["expression"] == "30 2 * * *"
    assert added["description"] == "At 02:30"
    assert added["timezone"] == "Europe/Paris"
    assert added["enabled"] is True
    assert added["misfire"] == "run_once"
    assert added["grace_seconds"] == 120.0
    assert added["kwargs"] == {"size": 3, "label": "night"}
    assert added["approved_by"] is None
    assert fire_at_hour_and_minute(added["next_run"]) == "02:30"
    assert dt.datetime.fromisoformat(added["next_run"]).utcoffset() in (
        dt.timedelta(hours=1),
        dt.timedelta(hours=2),
    )

    listed = schedules_json(capsys, backend, "list")
    assert [schedule["name"] for schedule in listed] == ["nightly"]
    assert listed[0]["kwargs"] == {"size": 3, "label": "night"}
    assert listed[0]["next_run"] == added["next_run"]


def test_schedules_add_prints_summary(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = schedules(
        capsys, backend, "add", "often", "cleanup_old_data", "*/5 * * * *",
        "--timezone", "UTC",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("schedule often added: Every 5 minutes (UTC), next run ")
    assert " UTC (" in out
    assert out.count("\n") == 1

    code, out, err = schedules(
        capsys, backend, "add", "later", "cleanup_old_data", "@daily",
        "--timezone", "UTC", "--disabled",
    )  # fmt: skip
    assert code == 0, err
    assert out == "schedule later added: At 00:00 (UTC), disabled\n"


def test_schedules_list_prints_table(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = schedules(capsys, backend, "list")
    assert code == 0, err
    assert out == "no schedules: add one with `chenu-desktop schedules add`\n"

    added = add_nightly(capsys, backend, "--misfire", "run_once")
    schedules_json(
        capsys, backend, "add", "weekly", "aggregate_analytics", "0 9 * * mon",
        "period=weekly", "--timezone", "Europe/Paris", "--disabled",
    )  # fmt: skip
    code, out, err = schedules(capsys, backend, "list")
    assert code == 0, err
    nightly, weekly = table_rows(out)
    assert list(nightly) == ["NAME", "TASK", "EXPRESSION", "DESCRIPTION", "ZONE",
                             "ENABLED", "NEXT RUN", "LAST RUN", "LAST STATUS",
                             "MISFIRE"]  # fmt: skip
    next_run = dt.datetime.fromisoformat(added["next_run"])
    assert nightly == {
        "NAME": "nightly",
        "TASK": "cleanup_old_data",
        "EXPRESSION": "0 2 * * *",
        "DESCRIPTION": "At 02:00",
        "ZONE": "UTC",
        "ENABLED": "yes",
        "NEXT RUN": nightly["NEXT RUN"],
        "LAST RUN": "-",
        "LAST STATUS": "-",
        "MISFIRE": "run_once",
    }
    assert nightly["NEXT RUN"].startswith(f"{next_run:%Y-%m-%d} 02:00 UTC (in ")
    assert weekly == {
        "NAME": "weekly",
        "TASK": "aggregate_analytics",
        "EXPRESSION": "0 9 * * mon",
        "DESCRIPTION": "At 09:00, only on Monday",
        "ZONE": "Europe/Paris",
        "ENABLED": "no",
        "NEXT RUN": "-",
        "LAST RUN": "-",
        "LAST STATUS": "-",
        "MISFIRE": "skip",
    }


def test_schedules_update_json(
    backend: str, task_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    schedules_json(
        capsys, backend, "add", "nightly", "cli_echo", "0 2 * * *",
        "size=3", "label=night", TASKS_OPTION,
    )  # fmt: skip

    updated = schedules_json(
        capsys, backend, "update", "nightly", "--schedule", "15 4 * * *",
        "--timezone", "Asia/Tokyo", "--misfire", "run_once",
        "--grace-seconds", "60", "label=day", TASKS_OPTION,
    )  # fmt: skip
    assert updated["expression"] == "15 4 * * *"
    assert updated["description"] == "At 04:15"
    assert updated["timezone"] == "Asia/Tokyo"
    assert updated["misfire"] == "run_once"
    assert updated["grace_seconds"] == 60.0
    assert updated["kwargs"] == {"size": 3, "label": "day"}
    assert fire_at_hour_and_minute(updated["next_run"]) == "04:15"
    assert updated["next_run"].endswith("+09:00")

    replaced = schedules_json(
        capsys, backend, "update", "nightly", "--kwargs-json", '{"size": 9}',
        TASKS_OPTION,
    )  # fmt: skip
    assert replaced["kwargs"] == {"size": 9}
    assert replaced["expression"] == "15 4 * * *"

    switched = schedules_json(
        capsys, backend, "update", "nightly", "--task", "cli_add", "a=1", "b=2",
        TASKS_OPTION,
    )  # fmt: skip
    assert switched["task_name"] == "cli_add"
    assert switched["kwargs"] == {"a": 1, "b": 2}
    assert schedules_json(capsys, backend, "list") == [switched]


def test_schedules_update_prints_summary(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nightly(capsys, backend)
    code, out, err = schedules(
        capsys, backend, "update", "nightly", "--schedule", "@hourly"
    )
    assert code == 0, err
    assert out.startswith("schedule nightly updated: Every hour (UTC), next run ")
    assert " UTC (" in out
    listed = schedules_json(capsys, backend, "list")
    assert listed[0]["expression"] == "@hourly"
    assert listed[0]["kwargs"] == {"days": 3}


def test_schedules_disable_and_enable(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nightly(capsys, backend)
    disabled = schedules_json(capsys, backend, "disable", "nightly")
    assert disabled["enabled"] is False
    assert disabled["next_run"] is None
    enabled = schedules_json(capsys, backend, "enable", "nightly")
    assert enabled["enabled"] is True
    assert fire_at_hour_and_minute(enabled["next_run"]) == "02:00"
    assert enabled["approved_by"] is None

    code, out, err = schedules(capsys, backend, "disable", "nightly")
    assert code == 0, err
    assert out == "schedule nightly disabled\n"
    assert schedules_json(capsys, backend, "list")[0]["enabled"] is False
    code, out, err = schedules(capsys, backend, "enable", "nightly")
    assert code == 0, err
    assert out.startswith("schedule nightly enabled: At 02:00 (UTC), next run ")
    assert schedules_json(capsys, backend, "list")[0]["enabled"] is True


def test_schedules_run_submits_task(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nightly(capsys, backend)
    code, out, err = schedules(capsys, backend, "run", "nightly")
    assert code == 0, err
    first_id = out.strip()
    record = run_json(capsys, "--backend", backend, "tasks", "show", first_id)
    assert record["task_name"] == "cleanup_old_data"
    assert record["kwargs"] == {"days": 3}
    assert record["queue"] == "scheduled"
    assert record["status"] == "pending"

    document = schedules_json(capsys, backend, "run", "nightly")
    assert document["schedule"] == "nightly"
    assert document["task_id"] != first_id
    listed = schedules_json(capsys, backend, "list")
    assert listed[0]["last_task_id"] == document["task_id"]
    assert listed[0]["last_status"] == "pending"
    code, out, err = schedules(capsys, backend, "list")
    assert code == 0, err
    (row,) = table_rows(out)
    assert row["LAST STATUS"] == "pending"


def test_schedules_history_newest_first(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    added = schedules_json(
        capsys, backend, "add", "hourly", "cleanup_old_data", "0 * * * *",
        "--timezone", "UTC",
    )  # fmt: skip
    code, out, err = schedules(capsys, backend, "history", "hourly")
    assert code == 0, err
    assert out == "no history for schedule hourly yet\n"
    assert schedules_json(capsys, backend, "history", "hourly") == []

    run_id = schedules_json(capsys, backend, "run", "hourly")["task_id"]
    first_fire = dt.datetime.fromisoformat(added["next_run"]).timestamp()
    with open_engine(backend) as engine:
        scheduler = engine.scheduler_service
        (first_id,) = scheduler.tick(now=first_fire + 5)
        # Three hours later: the two fires between are over a minute late, so missed.
        (last_id,) = scheduler.tick(now=first_fire + 3 * 3600 + 5)

    events = schedules_json(capsys, backend, "history", "hourly")
    assert [event["kind"] for event in events] == [
        "fired", "missed", "missed", "fired", "run_now",
    ]  # fmt: skip
    assert [event["task_id"] for event in events] == [
        last_id, None, None, first_id, run_id,
    ]  # fmt: skip
    fire_times = [
        dt.datetime.fromisoformat(event["fire_at"]).timestamp() for event in events[:4]
    ]
    assert fire_times == [first_fire + hours * 3600 for hours in (3, 2, 1, 0)]
    assert events[0]["fire_at"].endswith("+00:00")
    assert events[4]["fire_at"] is None
    assert all(event["schedule"] == "hourly" for event in events)

    limited = schedules_json(capsys, backend, "history", "hourly", "--limit", "2")
    assert [event["kind"] for event in limited] == ["fired", "missed"]

    code, out, err = schedules(capsys, backend, "history", "hourly")
    assert code == 0, err
    rows = table_rows(out)
    assert list(rows[0]) == ["KIND", "FIRE TIME", "RECORDED AT", "TASK ID", "DETAIL"]
    assert [row["KIND"] for row in rows] == [event["kind"] for event in events]
    last_fire = dt.datetime.fromtimestamp(first_fire + 3 * 3600, dt.timezone.utc)
    assert rows[0]["FIRE TIME"] == f"{last_fire:%Y-%m-%d %H:%M} UTC"
    assert rows[0]["TASK ID"] == last_id
    assert rows[0]["DETAIL"] == "-"
    assert rows[1]["TASK ID"] == "-"
    assert rows[4]["FIRE TIME"] == "-"
    assert rows[4]["RECORDED AT"].endswith(" UTC")


def test_schedules_remove(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    add_nightly(capsys, backend)
    schedules_json(capsys, backend, "add", "hourly", "cleanup_old_data", "@hourly")
    assert schedules_json(capsys, backend, "remove", "nightly") == {
        "removed": "nightly"
    }
    code, out, err = schedules(capsys, backend, "remove", "hourly")
    assert code == 0, err
    assert out == "schedule hourly removed\n"
    assert schedules_json(capsys, backend, "list") == []


def test_schedules_preview_json(capsys: pytest.CaptureFixture[str]) -> None:
    # Paris skips 02:00-03:00 on 2025-03-30, so that day's 02:30 runs at 03:00.
    document = run_json(
        capsys, "schedules", "preview", "30 2 * * *", "--timezone", "Europe/Paris",
        "--after", "2025-03-29T12:00", "--count", "3",
    )  # fmt: skip
    assert document == {
        "expression": "30 2 * * *",
        "timezone": "Europe/Paris",
        "description": "At 02:30",
        "after": "2025-03-29T12:00:00+01:00",
        "runs": [
            "2025-03-30T03:00:00+02:00",
            "2025-03-31T02:30:00+02:00",
            "2025-04-01T02:30:00+02:00",
        ],
    }

    default_count = run_json(capsys, "schedules", "preview", "@hourly")
    assert len(default_count["runs"]) == 5


def test_schedules_preview_needs_no_backend(capsys: pytest.CaptureFixture[str]) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    code, out, err = run_cli(
        capsys, "--backend", unreachable, "schedules", "preview", "0 9 * * mon-fri",
        "--timezone", "America/New_York", "--after", "2025-03-07T10:00-05:00",
        "--count", "3",
    )  # fmt: skip
    assert code == 0, err
    description, *runs = out.splitlines()
    assert description == "At 09:00, Monday through Friday (America/New_York)"
    assert [run.split(" (")[0] for run in runs] == [
        "Mon 2025-03-10 09:00 EDT",
        "Tue 2025-03-11 09:00 EDT",
        "Wed 2025-03-12 09:00 EDT",
    ]
    assert all(run.endswith(" ago)") for run in runs)


def test_schedules_governance_approver(
    backend: str,
    task_module: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_path = tmp_path / "chenu.toml"
    config_path.write_text('operator = "ops-lead"\n', encoding="utf-8")
    prefix = ["--backend", backend, "--config", str(config_path), "schedules"]

    code, out, err = run_cli(
        capsys, *prefix, "add", "deploy", "cli_deploy", "0 3 * * *", "target=prod",
        "--timezone", "UTC", TASKS_OPTION,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("schedule deploy added: At 03:00 (UTC), next run ")
    assert out.endswith(", runs approved by ops-lead\n")
    plain = run_json(
        capsys, *prefix, "add", "echo", "cli_echo", "0 3 * * *", TASKS_OPTION
    )
    assert plain["approved_by"] is None

    run_json(capsys, *prefix, "disable", "deploy")
    enabled = run_json(capsys, *prefix, "enable", "deploy", TASKS_OPTION)
    assert enabled["approved_by"] == "ops-lead"
    enabled = run_json(
        capsys, *prefix, "enable", "deploy", "--approved-by", "auditor", TASKS_OPTION
    )
    assert enabled["approved_by"] == "auditor"

    task_id = run_json(capsys, *prefix, "run", "deploy", TASKS_OPTION)["task_id"]
    record = run_json(capsys, "--backend", backend, "tasks", "show", task_id)
    assert record["status"] == "pending"
    assert record["approved_by"] == "auditor"
    assert record["queue"] == "scheduled"

    explicit = run_json(
        capsys, *prefix, "add", "deploy2", "cli_deploy", "0 4 * * *", "target=qa",
        "--approved-by", "release-manager", TASKS_OPTION,
    )  # fmt: skip
    assert explicit["approved_by"] == "release-manager"


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_schedules_flow_on_backend(
    kind: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = "backend" if kind == "sqlite" else "redis_url"
    backend = request.getfixturevalue(fixture)
    added = add_nightly(capsys, backend)
    assert added["kwargs"] == {"days": 3}

    code, out, err = schedules(capsys, backend, "list")
    assert code == 0, err
    (row,) = table_rows(out)
    assert row["NAME"] == "nightly"
    assert row["TASK"] == "cleanup_old_data"
    assert [s["name"] for s in schedules_json(capsys, backend, "list")] == ["nightly"]

    code, out, err = schedules(capsys, backend, "run", "nightly")
    assert code == 0, err
    task_id = out.strip()
    record = run_json(capsys, "--backend", backend, "tasks", "show", task_id)
    assert record["queue"] == "scheduled"
    assert record["kwargs"] == {"days": 3}
    events = schedules_json(capsys, backend, "history", "nightly")
    assert [(event["kind"], event["task_id"]) for event in events] == [
        ("run_now", task_id)
    ]

    assert schedules_json(capsys, backend, "disable", "nightly")["enabled"] is False
    assert schedules_json(capsys, backend, "enable", "nightly")["enabled"] is True
    updated = schedules_json(capsys, backend, "update", "nightly", "days=7")
    assert updated["kwargs"] == {"days": 7}

    code, out, err = schedules(capsys, backend, "remove", "nightly")
    assert code == 0, err
    assert out == "schedule nightly removed\n"
    assert schedules_json(capsys, backend, "list") == []


RELATIVE_TIMES = {
    0.4: "now",
    42: "in 42 s",
    -42.7: "42 s ago",
    170: "in 3 min",
    3600: "in 1 h",
    5400: "in 1 h 30 min",
    -7500: "2 h 5 min ago",
    86400: "in 1 d",
    2 * 86400 + 3 * 3600 + 100: "in 2 d 3 h",
}


@pytest.mark.parametrize("seconds, expected", RELATIVE_TIMES.items())
def test_format_relative(seconds: float, expected: str) -> None:
    assert format_relative(seconds) == expected


# --- schedules: bad input ----------------------------------------------------


#: Invalid expressions or zones, with the text that the error must contain.
BAD_SCHEDULES = {
    "hour out of range": ("0 25 * * *", "UTC", "invalid hour '25'"),
    "minute out of range": ("60 * * * *", "UTC", "invalid minute '60'"),
    "reversed minute range": ("30-10 * * * *", "UTC", "invalid minute '30-10'"),
    "reversed weekday range": (
        "0 9 * * fri-mon",
        "UTC",
        "invalid day-of-week 'fri-mon'",
    ),
    "too few fields": ("0 9 * *", "UTC", "invalid cron expression '0 9 * *'"),
    "too many fields": ("0 0 9 * * *", "UTC", "expected 5 fields"),
    "unknown alias": ("@sometimes", "UTC", "invalid cron expression '@sometimes'"),
    "day that never occurs": ("0 0 31 2 *", "UTC", "invalid day-of-month '31'"),
    "invalid zone": ("0 9 * * *", "Mars/Olympus", "invalid timezone 'Mars/Olympus'"),
}


def assert_one_error_line(code: int, out: str, err: str, expected: str) -> None:
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "expression, zone, expected", BAD_SCHEDULES.values(), ids=BAD_SCHEDULES.keys()
)
def test_schedules_add_bad_expression_stores_nothing(
    expression: str,
    zone: str,
    expected: str,
    backend: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = schedules(
        capsys, backend, "add", "broken", "cleanup_old_data", expression,
        "--timezone", zone,
    )  # fmt: skip
    assert_one_error_line(code, out, err, expected)
    assert schedules_json(capsys, backend, "list") == []


@pytest.mark.parametrize(
    "expression, zone, expected", BAD_SCHEDULES.values(), ids=BAD_SCHEDULES.keys()
)
def test_schedules_update_bad_expression_changes_nothing(
    expression: str,
    zone: str,
    expected: str,
    backend: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_nightly(capsys, backend)
    before = schedules_json(capsys, backend, "list")
    code, out, err = schedules(
        capsys, backend, "update", "nightly", "--schedule", expression,
        "--timezone", zone,
    )  # fmt: skip
    assert_one_error_line(code, out, err, expected)
    assert schedules_json(capsys, backend, "list") == before


@pytest.mark.parametrize(
    "expression, zone, expected", BAD_SCHEDULES.values(), ids=BAD_SCHEDULES.keys()
)
def test_schedules_preview_bad_expression(
    expression: str, zone: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "schedules", "preview", expression, "--timezone", zone
    )
    assert_one_error_line(code, out, err, expected)


#: Bad schedule commands, run while the schedule ``nightly`` exists.
BAD_SCHEDULE_INPUT = {
    "update unknown name": (
        ["update", "nope", "--schedule", "0 3 * * *"],
        "schedule 'nope' not found",
    ),
    "remove unknown name": (["remove", "nope"], "schedule 'nope' not found"),
    "enable unknown name": (["enable", "nope"], "schedule 'nope' not found"),
    "disable unknown name": (["disable", "nope"], "schedule 'nope' not found"),
    "run unknown name": (["run", "nope"], "schedule 'nope' not found"),
    "history unknown name": (["history", "nope"], "schedule 'nope' not found"),
    "add existing name": (
        ["add", "nightly", "cleanup_old_data", "0 3 * * *"],
        "schedule 'nightly' exists already",
    ),
    "add empty name": (
        ["add", " ", "cleanup_old_data", "0 3 * * *"],
        "invalid schedule name ' '",
    ),
    "add unknown task": (
        ["add", "other", "no_such_task", "0 3 * * *"],
        "pass --tasks MODULE to import the module that registers it",
    ),
    "add unexpected argument": (
        ["add", "other", "cleanup_old_data", "0 3 * * *", "weeks=2"],
        "unexpected keyword argument 'weeks'",
    ),
    "add argument twice": (
        [
            "add",
            "other",
            "cleanup_old_data",
            "0 3 * * *",
            "days=1",
            "--kwargs-json",
            '{"days": 2}',
        ],
        "given both",
    ),
    "add bad misfire": (
        ["add", "other", "cleanup_old_data", "0 3 * * *", "--misfire", "later"],
        "invalid misfire policy 'later'",
    ),
    "add negative grace": (
        ["add", "other", "cleanup_old_data", "0 3 * * *", "--grace-seconds", "-1"],
        "invalid grace_seconds -1.0",
    ),
    "add governance without approver": (
        [
            "add",
            "other",
            "cli_deploy",
            "0 3 * * *",
            "target=prod",
            "--approved-by",
            "",
            TASKS_OPTION,
        ],
        "runs a governance task",
    ),
    "update nothing": (["update", "nightly"], "nothing to update"),
    "update option-named argument": (
        ["update", "nightly", "timezone=UTC"],
        "task argument 'timezone' has the name of a schedule option",
    ),
    "update bad kwargs JSON": (
        ["update", "nightly", "--kwargs-json", "[1]"],
        "invalid --kwargs-json",
    ),
    "update bad misfire": (
        ["update", "nightly", "--misfire", "later"],
        "invalid misfire policy 'later'",
    ),
    "history bad limit": (["history", "nightly", "--limit", "0"], "invalid limit 0"),
    "preview bad count": (
        ["preview", "0 9 * * *", "--count", "0"],
        "invalid --count 0",
    ),
    "preview bad after": (
        ["preview", "0 9 * * *", "--after", "tomorrow"],
        "invalid --after 'tomorrow'",
    ),
}


@pytest.mark.parametrize(
    "argv, expected", BAD_SCHEDULE_INPUT.values(), ids=BAD_SCHEDULE_INPUT.keys()
)
def test_schedules_bad_input_exits_2(
    argv: list[str],
    expected: str,
    backend: str,
    task_module: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_nightly(capsys, backend)
    before = schedules_json(capsys, backend, "list")
    code, out, err = schedules(capsys, backend, *argv)
    assert_one_error_line(code, out, err, expected)
    assert schedules_json(capsys, backend, "list") == before


def test_schedules_redis_down_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    code, out, err = run_cli(capsys, "--backend", url, "schedules", "list")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "redis://:***@127.0.0.1" in err
    assert "hunter2" not in err
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
    worker = worker_process(backend, "--headless")
    with open_engine(backend) as engine:
        wait_until(
            lambda: {w.pid for w in engine.workers()} == {worker.process.pid},
            "heartbeats of the headless worker",
        )
        queues = {w.queue for w in engine.workers()}
    assert queues == set(TaskQueue)

    assert worker.stop(signal.SIGINT) == 0
    output = worker.output()
    assert "running the engine headless on every queue" in output
    assert "SIGINT received: stopping" in output


@pytest.mark.slow
def test_bare_command_opens_window(
    backend: str, worker_process: Callable[..., WorkerProcess]
) -> None:
    """The window starts (offscreen here) with the workers inside and stops on SIGTERM."""
    worker = worker_process(backend, "--demo")
    with open_engine(backend) as engine:
        wait_until(
            lambda: {w.pid for w in engine.workers()} == {worker.process.pid},
            "heartbeats of the window's workers",
        )
        wait_until(
            lambda: engine.task_service.count_tasks(task_name="demo_quick") == 40,
            "the demo tasks",
        )
    assert worker.stop(signal.SIGTERM) == 0
    output = worker.output()
    assert "window open on" in output
    assert "Traceback" not in output


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
