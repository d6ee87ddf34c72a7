"""Non-ASCII text round trips on both backends, through the CLI and the search."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli, run_json
from engine_helpers import open_test_engine, wait_final

from chenu_desktop import TaskQueue, TaskStatus, background_task, current_task
from chenu_desktop.cli import display_width, format_table
from chenu_desktop.engine import Engine
from chenu_desktop.errors import InvalidArgumentError
from chenu_desktop.scheduling.sqlite_store import SqliteScheduleStore
from chenu_desktop.scheduling.store import ScheduleRecord

#: Accents, CJK, an emoji with a joiner, right-to-left scripts and combining marks.
TEXT = "Ünïcødé café 日本語の報告 🚀👩\u200d💻 שלום עולם مرحبا e\u0301\u0308"
PERSON = "Zoë 李小龍 🚀"
SCHEDULE = "rapport quotidien 日本 🚀 שלום"
#: Text with a lone surrogate, as Python decodes an invalid UTF-8 byte in argv.
BROKEN = "fichier-\udcff.csv"


@background_task(name="uni_echo", queue=TaskQueue.DEFAULT)
def echo(text: str, items: list[Any]) -> dict[str, Any]:
    return {"text": text, "items": items, TEXT: TEXT}


@background_task(name="uni_fail", queue=TaskQueue.DEFAULT)
def fail(text: str) -> None:
    raise ValueError(f"échec du rapport: {text}")


@background_task(
    name="uni_approve", queue=TaskQueue.GOVERNANCE, requires_governance=True
)
def approve_me(text: str) -> str:
    return text


@background_task(name="rapport_日本_🚀", queue=TaskQueue.DEFAULT)
def named(n: int) -> int:
    return n


@background_task(name="uni_broken_error", queue=TaskQueue.DEFAULT)
def broken_error() -> None:
    raise FileNotFoundError(f"input {BROKEN} not found")


@background_task(name="uni_broken_result", queue=TaskQueue.DEFAULT)
def broken_result() -> str:
    return BROKEN


@background_task(name="uni_broken_progress", queue=TaskQueue.DEFAULT)
def broken_progress() -> int:
    current_task().set_progress(0.5, f"reading {BROKEN}")
    return 1


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = open_test_engine(url)
    engine.start_workers(scheduler=False)
    try:
        yield engine
    finally:
        engine.close()


def found_ids(engine: Engine, text: str) -> set[str]:
    return {record.task_id for record in engine.task_service.list_tasks(text=text)}


# --- round trips ---------------------------------------------------------------


def test_arguments_result_id_round_trip(
    engine: Engine, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [TEXT, {"κλειδί": "🚀", "مفتاح": [PERSON]}]
    task_id = engine.task_service.submit(
        "uni_echo", text=TEXT, items=items, task_id="tâche-日本-🚀-1"
    )
    record = wait_final(engine, task_id)

    assert record.status is TaskStatus.SUCCESS, record.error
    assert record.task_id == "tâche-日本-🚀-1"
    assert record.kwargs == {"text": TEXT, "items": items}
    assert record.result == {"text": TEXT, "items": items, TEXT: TEXT}
    assert found_ids(engine, "tâche-日本") == {task_id}

    shown = run_json(capsys, "--backend", url, "tasks", "show", task_id)
    assert shown == json.loads(json.dumps(record.to_dict()))
    code, out, _ = run_cli(capsys, "--backend", url, "tasks", "show", task_id)
    assert code == 0
    assert f"task_id: {task_id}" in out
    assert TEXT in out
    assert json.dumps(items, ensure_ascii=False) in out

    listed = run_json(capsys, "--backend", url, "tasks", "list", "--text", "tâche-日")
    assert [task["task_id"] for task in listed["tasks"]] == [task_id]
    code, out, _ = run_cli(
        capsys, "--backend", url, "tasks", "list", "--text", "tâche-日"
    )
    assert code == 0
    assert task_id in out


def test_error_traceback_round_trip(
    engine: Engine, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = engine.task_service.submit("uni_fail", text=TEXT)
    record = wait_final(engine, task_id)

    assert record.status is TaskStatus.FAILURE
    assert record.error == f"ValueError: échec du rapport: {TEXT}"
    assert f"ValueError: échec du rapport: {TEXT}" in record.traceback

    code, out, _ = run_cli(capsys, "--backend", url, "tasks", "show", task_id)
    assert code == 0
    assert f"error: ValueError: échec du rapport: {TEXT}" in out
    assert record.traceback.rstrip("\n") in out
    shown = run_json(capsys, "--backend", url, "tasks", "show", task_id)
    assert shown["traceback"] == record.traceback


@pytest.mark.parametrize(
    "needle",
    [
        "日本語の報告",
        "שלום עולם",
        "مرحبا",
        "e\u0301\u0308",
        "ÉCHEC DU RAPPORT: ÜNÏ",
        "ünïcødé",
        "👩\u200d💻",
    ],
)
def test_search_finds_error_text(engine: Engine, needle: str) -> None:
    task_id = engine.task_service.submit("uni_fail", text=TEXT)
    other = engine.task_service.submit("uni_fail", text="plain ascii")
    wait_final(engine, task_id)
    wait_final(engine, other)

    assert found_ids(engine, needle) == {task_id}
    assert engine.task_service.count_tasks(text=needle) == 1


def test_search_finds_task_name(engine: Engine, url: str, capsys) -> None:
    task_id = engine.task_service.submit("rapport_日本_🚀", n=3)
    record = wait_final(engine, task_id)

    assert record.status is TaskStatus.SUCCESS, record.error
    assert found_ids(engine, "日本_🚀") == {task_id}
    code, out, _ = run_cli(capsys, "--backend", url, "tasks", "list", "--text", "🚀")
    assert code == 0
    assert "rapport_日本_🚀" in out


def test_approval_names_round_trip(
    engine: Engine, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    approved = engine.task_service.submit("uni_approve", text=TEXT)
    rejected = engine.task_service.submit("uni_approve", text=TEXT)

    code, out, err = run_cli(
        capsys, "--backend", url, "tasks", "approve", approved,
        "--approver", PERSON, "--reason", TEXT,
    )  # fmt: skip
    assert code == 0, err
    assert f"approved by {PERSON}" in out
    document = run_json(
        capsys, "--backend", url, "tasks", "reject", rejected,
        "--approver", PERSON, "--reason", TEXT,
    )  # fmt: skip
    assert document["approved_by"] == PERSON
    assert document["approval_reason"] == TEXT

    done = wait_final(engine, approved)
    assert done.status is TaskStatus.SUCCESS, done.error
    assert done.approved_by == PERSON
    assert done.approval_reason == TEXT
    assert done.result == TEXT
    refused = engine.task_service.get_status(rejected)
    assert refused.status is TaskStatus.REJECTED
    assert refused.approved_by == PERSON
    assert refused.approval_reason == TEXT


def test_schedule_name_round_trip(
    engine: Engine, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    service = engine.scheduler_service
    info = service.add_schedule(SCHEDULE, "uni_echo", "0 3 * * *", text=TEXT, items=[])
    assert info.name == SCHEDULE
    assert [s.name for s in service.list_schedules()] == [SCHEDULE]

    task_id = service.run_now(SCHEDULE)
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.SUCCESS, record.error
    assert record.kwargs["text"] == TEXT
    assert service.get_schedule(SCHEDULE).last_task_id == task_id
    assert [event.task_id for event in service.history(SCHEDULE)] == [task_id]

    listed = run_json(capsys, "--backend", url, "schedules", "list")
    assert [entry["name"] for entry in listed] == [SCHEDULE]
    assert listed[0]["kwargs"]["text"] == TEXT
    code, out, _ = run_cli(capsys, "--backend", url, "schedules", "list")
    assert code == 0
    assert SCHEDULE in out


def test_table_aligns_wide_text() -> None:
    rows = [["日本語の報告", "a"], ["e\u0301\u0308", "b"], ["ascii name", "c"]]
    lines = format_table(["NAME", "QUEUE"], rows).split("\n")
    starts = [display_width(line[: line.rindex(" ") + 1]) for line in lines]

    assert display_width("日本語の報告") == 12
    assert display_width("e\u0301\u0308") == 1
    assert starts == [14, 14, 14, 14]


# --- text that is not valid Unicode --------------------------------------------


def test_lone_surrogate_input_rejected(engine: Engine) -> None:
    tasks = engine.task_service
    schedules = engine.scheduler_service
    waiting = tasks.submit("uni_approve", text="x")
    cases = {
        "argument": lambda: tasks.submit("uni_echo", text=BROKEN, items=[]),
        "nested key": lambda: tasks.submit("uni_echo", text="x", items=[{BROKEN: 1}]),
        "task id": lambda: tasks.submit("uni_echo", text="x", items=[], task_id=BROKEN),
        "search": lambda: tasks.list_tasks(text=BROKEN),
        "show": lambda: tasks.get_status(BROKEN),
        "approver": lambda: tasks.approve(waiting, BROKEN),
        "approve reason": lambda: tasks.approve(waiting, PERSON, BROKEN),
        "reject reason": lambda: tasks.reject(waiting, PERSON, BROKEN),
        "schedule name": lambda: schedules.add_schedule(
            BROKEN, "uni_echo", "0 3 * * *", text="x", items=[]
        ),
        "schedule lookup": lambda: schedules.get_schedule(BROKEN),
    }
    for case, call in cases.items():
        with pytest.raises(InvalidArgumentError) as caught:
            call()
        message = str(caught.value)
        assert "lone surrogate '\\udcff'" in message, case
        assert "pass text that encodes as UTF-8" in message, case

    assert tasks.count_tasks() == 1
    assert tasks.get_status(waiting).status is TaskStatus.AWAITING_APPROVAL
    assert schedules.list_schedules() == []


def test_lone_surrogate_argv_exits_2(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "--backend", url, "tasks", "submit", "uni_echo", f"text={BROKEN}",
        "items=[]",
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert err.startswith("error: argument 'text' of 'uni_echo' is ")
    assert "lone surrogate" in err
    assert "Traceback" not in err


def test_task_output_surrogates_stored(engine: Engine) -> None:
    """Undecodable text from a task is escaped or rejected, never blocks writes."""
    service = engine.task_service
    error_id = service.submit("uni_broken_error")
    result_id = service.submit("uni_broken_result")
    progress_id = service.submit("uni_broken_progress")
    after_id = service.submit("uni_echo", text=TEXT, items=[])

    failed = wait_final(engine, error_id)
    assert failed.status is TaskStatus.FAILURE
    assert failed.error == "FileNotFoundError: input fichier-\\udcff.csv not found"
    assert "fichier-\\udcff.csv" in failed.traceback
    rejected = wait_final(engine, result_id)
    assert rejected.status is TaskStatus.FAILURE
    assert "lone surrogate '\\udcff'" in rejected.error
    assert rejected.result is None
    progressed = wait_final(engine, progress_id)
    assert progressed.status is TaskStatus.SUCCESS
    assert progressed.progress_message == "reading fichier-\\udcff.csv"
    assert wait_final(engine, after_id).status is TaskStatus.SUCCESS


def test_failed_schedule_write_releases_lock(sqlite_path: Path) -> None:
    """A write that raises rolls back, so other connections can still write."""
    store = SqliteScheduleStore(sqlite_path)
    other = SqliteScheduleStore(sqlite_path, busy_timeout=1.0)
    try:
        broken = ScheduleRecord(
            name=BROKEN, task_name="uni_echo", expression="0 3 * * *", timezone="UTC"
        )
        with pytest.raises(UnicodeEncodeError):
            store.add(broken)
        fine = ScheduleRecord(
            name=SCHEDULE, task_name="uni_echo", expression="0 3 * * *", timezone="UTC"
        )
        assert other.add(fine)
        assert [record.name for record in store.list()] == [SCHEDULE]
    finally:
        store.close()
        other.close()
