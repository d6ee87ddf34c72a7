"""The built-in tasks do their work through a real engine."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

import pytest

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine

from engine_helpers import backend_url, open_test_engine, wait_final


@background_task(name="b_square", queue=TaskQueue.HIGH)
def square(n: int) -> int:
    return n * n


@background_task(name="b_fail", queue=TaskQueue.HIGH)
def always_fails() -> None:
    raise RuntimeError("no luck")


@pytest.fixture(params=["sqlite", "redis"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    redis_url = (
        request.getfixturevalue("redis_url") if request.param == "redis" else None
    )
    engine = open_test_engine(backend_url(request.param, tmp_path, redis_url))
    engine.start_workers()
    try:
        yield engine
    finally:
        engine.close()


def run(engine: Engine, name: str, **kwargs: object):
    record = wait_final(engine, engine.task_service.submit(name, **kwargs))
    assert record.status is TaskStatus.SUCCESS, record.error
    return record.result


def test_cleanup_old_data_deletes(engine: Engine) -> None:
    done = wait_final(engine, engine.task_service.submit("b_square", n=2))
    result = run(engine, "cleanup_old_data", days=0)
    assert result == {"deleted": 1, "older_than_days": 0}
    assert engine.task_service.list_tasks(task_name="b_square") == []
    assert done.status is TaskStatus.SUCCESS


def test_aggregate_analytics_counts(engine: Engine) -> None:
    for n in range(3):
        wait_final(engine, engine.task_service.submit("b_square", n=n))
    wait_final(engine, engine.task_service.submit("b_fail"))
    result = run(engine, "aggregate_analytics", period="hourly")
    high = result["queues"]["high"]
    assert high["total"] == 4
    assert high["statuses"] == {"success": 3, "failure": 1}
    assert result["tasks"]["b_square"]["statuses"] == {"success": 3}
    assert result["tasks"]["b_square"]["duration_seconds"]["mean"] >= 0
    assert result["truncated"] is False
    assert result["period"] == "hourly"


def test_aggregate_analytics_bad_period(engine: Engine) -> None:
    task_id = engine.task_service.submit("aggregate_analytics", period="yearly")
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.FAILURE
    assert "invalid period 'yearly'" in record.error


def test_export_tasks_csv(engine: Engine) -> None:
    wait_final(engine, engine.task_service.submit("b_square", n=7))
    path = Path(run(engine, "export_tasks", format="csv", task_name="b_square"))
    assert path.is_file()
    assert path.parent == engine.data_dir / "exports"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert rows[0]["task_name"] == "b_square"
    assert json.loads(rows[0]["result"]) == 49
    assert json.loads(rows[0]["kwargs"]) == {"n": 7}


def test_export_tasks_json(engine: Engine) -> None:
    wait_final(engine, engine.task_service.submit("b_fail"))
    path = Path(run(engine, "export_tasks", format="json", status="failure"))
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert [row["task_name"] for row in rows] == ["b_fail"]
    assert rows[0]["error"] == "RuntimeError: no luck"
