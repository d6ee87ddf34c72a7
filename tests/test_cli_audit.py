"""Tests of ``chenu-desktop audit`` and of the audit entries the commands write."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chenu_desktop import open_engine
from chenu_desktop.backend import sqlite_url
from chenu_desktop.cli import main
from chenu_desktop.cli_audit import parse_since


@pytest.fixture
def backend(sqlite_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite backend whose configured operator is "ada"."""
    config = tmp_path / "config.toml"
    config.write_text('operator = "ada"\n', encoding="utf-8")
    monkeypatch.setenv("CHENU_CONFIG", str(config))
    return sqlite_url(sqlite_path)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def submit_scheduled(capsys: pytest.CaptureFixture[str], backend: str) -> str:
    document = run_json(
        capsys, "--backend", backend, "tasks", "submit", "cleanup_old_data",
        "days=3", "--countdown", "600",
    )  # fmt: skip
    return document["task_id"]


def test_commands_write_entries(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    task_id = submit_scheduled(capsys, backend)
    run_json(capsys, "--backend", backend, "tasks", "cancel", task_id)
    retry = run_json(capsys, "--backend", backend, "tasks", "retry", task_id)
    run_json(
        capsys, "--backend", backend, "schedules", "add", "nightly",
        "cleanup_old_data", "0 2 * * *", "days=7",
    )  # fmt: skip
    run_json(capsys, "--backend", backend, "schedules", "disable", "nightly")

    document = run_json(capsys, "--backend", backend, "audit")
    listed = [(e["action"], e["target"]) for e in document["entries"]]
    assert listed == [
        ("schedule_disable", "nightly"),
        ("schedule_add", "nightly"),
        ("retry", task_id),
        ("cancel", task_id),
        ("submit", task_id),
    ]
    assert document["total"] == 5
    assert {e["operator"] for e in document["entries"]} == {"ada"}
    assert document["entries"][2]["details"]["new_task_id"] == retry["task_id"]


def test_audit_filters_and_limit(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    first = submit_scheduled(capsys, backend)
    second = submit_scheduled(capsys, backend)
    run_json(capsys, "--backend", backend, "tasks", "cancel", first)
    run_json(capsys, "--backend", backend, "tasks", "cancel", second)

    def listed(*options: str) -> list[tuple[str, str]]:
        document = run_json(capsys, "--backend", backend, "audit", *options)
        return [(e["action"], e["target"]) for e in document["entries"]]

    assert listed("--action", "cancel") == [("cancel", second), ("cancel", first)]
    assert listed("--target", first) == [("cancel", first), ("submit", first)]
    assert listed("--operator", "ada", "--limit", "1") == [("cancel", second)]
    assert listed("--operator", "bob") == []
    assert listed("--since", "1h", "--action", "submit", "--offset", "1") == [
        ("submit", first)
    ]
    future = (dt.datetime.now() + dt.timedelta(days=1)).isoformat(timespec="minutes")
    assert listed("--since", future) == []


def test_audit_prints_table(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    task_id = submit_scheduled(capsys, backend)
    code, out, err = run_cli(capsys, "--backend", backend, "audit")
    assert code == 0, err
    header, row, summary = out.splitlines()
    assert header.split() == [
        "ID", "WHEN", "OPERATOR", "ACTION", "TARGET", "REASON", "DETAILS",
    ]  # fmt: skip
    assert row.split()[0] == "1"
    assert "ada" in row.split()
    assert f"task {task_id}" in row
    assert 'task_name="cleanup_old_data"' in row
    assert summary == "entries 1-1 of 1"


def test_audit_empty_trail(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    code, out, err = run_cli(capsys, "--backend", backend, "audit")
    assert (code, out, err) == (0, "no audit entries match\n", "")
    code, out, _ = run_cli(capsys, "--backend", backend, "audit", "--offset", "5")
    assert out == "no audit entries match\n"


def test_audit_reject_reason_shown(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    from chenu_desktop import TaskQueue, background_task
    from chenu_desktop.registry import default_registry

    @background_task(name="cli_audit_payout", queue=TaskQueue.GOVERNANCE,
                     requires_governance=True)  # fmt: skip
    def cli_audit_payout(approved_by: str = "") -> str:
        return approved_by

    try:
        with open_engine(backend) as engine:
            task_id = engine.task_service.submit("cli_audit_payout")
        run_json(
            capsys, "--backend", backend, "tasks", "reject", task_id,
            "--reason", "wrong account", "--approver", "bob",
        )  # fmt: skip
    finally:
        default_registry.remove("cli_audit_payout")
    [entry] = run_json(capsys, "--backend", backend, "audit")["entries"]
    assert entry["action"] == "reject"
    assert entry["operator"] == "ada"
    assert entry["reason"] == "wrong account"
    assert entry["details"]["approver"] == "bob"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--since", "yesterday"], "invalid --since 'yesterday'"),
        (["--limit", "0"], "invalid --limit 0"),
        (["--limit", "1001"], "invalid --limit 1001"),
        (["--offset", "-1"], "invalid offset -1"),
    ],
)
def test_audit_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str],
    backend: str,
    options: list[str],
    expected: str,
) -> None:
    code, out, err = run_cli(capsys, "--backend", backend, "audit", *options)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {expected}")
    assert err.count("\n") == 1


def test_audit_unknown_action_exits_2(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    code, out, err = run_cli(capsys, "--backend", backend, "audit", "--action", "nope")
    assert code == 2
    assert out == ""
    assert "invalid choice: 'nope'" in err
    assert "schedule_run_now" in err


def test_audit_redis_down_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    code, out, err = run_cli(capsys, "--backend", url, "audit")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "redis://:***@127.0.0.1" in err
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_parse_since() -> None:
    now = 1_700_000_000.0
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2h", now) == now - 7200
    assert parse_since("1.5d", now) == now - 1.5 * 86400
    assert parse_since(" 45S ", now) == now - 45
    moment = dt.datetime(2026, 3, 1, 9, 30)
    assert parse_since("2026-03-01T09:30") == moment.timestamp()
    aware = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert parse_since("2026-03-01T09:30+00:00") == aware.timestamp()


def test_audit_write_failure_exits_1(
    capsys: pytest.CaptureFixture[str], backend: str, sqlite_path: Path
) -> None:
    task_id = submit_scheduled(capsys, backend)
    conn = sqlite3.connect(sqlite_path)
    conn.execute(
        "CREATE TRIGGER audit_test_full BEFORE INSERT ON chenu_audit "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    conn.commit()
    conn.close()
    code, out, err = run_cli(capsys, "--backend", backend, "tasks", "cancel", task_id)
    assert code == 1
    assert out == ""
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    expected = (
        f"error: cancel of task {task_id!r} took effect, but storing its audit "
        f"entry on {backend} failed (database or disk is full); the entry is in "
        "the log; do not repeat the action"
    )
    assert error_lines == [expected]
    assert "unavailable" not in err
    shown = run_json(capsys, "--backend", backend, "tasks", "show", task_id)
    assert shown["status"] == "cancelled"
