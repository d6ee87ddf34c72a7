"""A text-filtered page reads the newest records first, then the text indexes.

Both ways must return the same page, whichever contains it, on both backends. A
small scan window puts its edge inside the records of each test.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chenu_desktop.ledger import redis_ledger, sqlite_ledger
from chenu_desktop.ledger.base import Ledger
from chenu_desktop.ledger.redis_ledger import RedisLedger
from chenu_desktop.ledger.sqlite_ledger import SqliteLedger
from chenu_desktop.models import TaskFilter, TaskQueue, TaskRecord, TaskStatus

T0 = 1_700_000_000.0
NAMES = ["backup.nightly", "reports.build", "mail.send"]
ERRORS = [
    None,
    None,
    "Connection timed out",
    "disk full",
    "50% done_ok",
    "Ünïcode",
    "Große Straße",
]


def make_records() -> list[TaskRecord]:
    chooser = random.Random(7)
    records = []
    for index in range(300):
        error = chooser.choice(ERRORS)
        records.append(
            TaskRecord(
                task_id=f"{index:04d}{chooser.randrange(16**6):06x}",
                task_name=chooser.choice(NAMES),
                queue=chooser.choice(list(TaskQueue)),
                priority=6,
                status=TaskStatus.FAILURE if error else TaskStatus.SUCCESS,
                error=error,
                # Every third record shares its creation time with the next.
                created_at=T0 + index - (index % 3 == 1),
                updated_at=T0 + index,
            )
        )
    return records


@pytest.fixture(params=["sqlite", "redis"])
def ledger(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Ledger]:
    opened: Ledger
    if request.param == "sqlite":
        monkeypatch.setattr(sqlite_ledger, "TEXT_SCAN_ROWS", 40)
        opened = SqliteLedger(tmp_path / "ledger.db")
        opened.insert_many(make_records())
    else:
        monkeypatch.setattr(redis_ledger, "TEXT_SCAN_ROWS", 40)
        monkeypatch.setattr(redis_ledger, "_TEXT_SCAN_CHUNK", 15)
        url: str = request.getfixturevalue("redis_url")
        opened = RedisLedger(redis.Redis.from_url(url), "textscan")
        for record in make_records():
            opened.insert(record)
    yield opened
    opened.close()


def by_indexes(
    ledger: Ledger,
    task_filter: TaskFilter,
    limit: int,
    offset: int = 0,
    ascending: bool = False,
) -> list[str]:
    """Return the page's ids as the text indexes alone find them."""
    if isinstance(ledger, SqliteLedger):
        sql, params = ledger.list_query(task_filter, limit, offset, ascending)
        return [row["task_id"] for row in ledger._connection().execute(sql, params)]
    assert isinstance(ledger, RedisLedger)
    return ledger._page(ledger._plan(task_filter), offset, limit, ascending)


@pytest.mark.parametrize(
    "text",
    [
        "backup",
        "TIMED OUT",
        "disk",
        "50%",
        "done_",
        "0012",
        "none-such",
        "ünï",
        "ma",
        # ASCII text that matches only once "ß" folds to "ss".
        "strasse",
    ],
)
@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize("offset", [0, 7, 60])
def test_scan_matches_index_page(
    ledger: Ledger, text: str, ascending: bool, offset: int
) -> None:
    task_filter = TaskFilter(text=text)
    page = ledger.list_tasks(task_filter, limit=10, offset=offset, ascending=ascending)
    expected = by_indexes(
        ledger, task_filter, limit=10, offset=offset, ascending=ascending
    )
    assert [record.task_id for record in page] == expected


def test_scan_with_other_filters(ledger: Ledger) -> None:
    for task_filter in (
        TaskFilter(text="timed", status=TaskStatus.FAILURE),
        TaskFilter(text="backup", queue=TaskQueue.HIGH),
        TaskFilter(text="disk", task_name="mail.send"),
        TaskFilter(text="send", created_after=T0 + 250),
        TaskFilter(text="send", created_before=T0 + 30),
    ):
        page = ledger.list_tasks(task_filter, limit=5)
        assert [r.task_id for r in page] == by_indexes(ledger, task_filter, limit=5)


def test_common_text_reads_only_the_scan(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page found among the newest records does not go through the text indexes."""
    texts: list[str | None] = []
    name = "list_query" if isinstance(ledger, SqliteLedger) else "_plan"
    original = getattr(ledger, name)

    def counted(task_filter: TaskFilter, *args: object) -> object:
        texts.append(task_filter.text)
        return original(task_filter, *args)

    monkeypatch.setattr(ledger, name, counted)
    newest = {r.task_id for r in ledger.list_tasks(TaskFilter(), limit=40)}
    texts.clear()

    page = ledger.list_tasks(TaskFilter(text="backup"), limit=5)

    assert len(page) == 5
    assert {r.task_id for r in page} <= newest
    assert "backup" not in texts
    # A rare text finds too few of them, so the text indexes serve its page.
    rare = ledger.list_tasks(TaskFilter(text="0012"), limit=5)
    assert "0012" in texts
    assert len(rare) == 1
