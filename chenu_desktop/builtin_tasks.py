"""Built-in tasks: cleanup of old records, analytics and exports of the ledger."""

from __future__ import annotations

import csv
import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

from .context import current_task
from .errors import InvalidArgumentError
from .models import TaskQueue, TaskRecord
from .registry import background_task

#: Length in seconds of each period `aggregate_analytics` accepts.
PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
#: Records `aggregate_analytics` reads at most; a larger period is reported truncated.
MAX_ANALYTICS_RECORDS = 200_000
EXPORT_FIELDS = (
    "task_id", "task_name", "queue", "priority", "status", "attempts", "max_retries",
    "created_at", "started_at", "finished_at", "duration_seconds", "worker", "error",
    "retry_of", "retried_as", "approved_by", "args", "kwargs", "result",
)  # fmt: skip


def _records(
    task_service: Any, limit: int, **filters: Any
) -> tuple[list[TaskRecord], bool]:
    records: list[TaskRecord] = []
    while len(records) < limit:
        page = task_service.list_tasks(
            limit=min(1000, limit - len(records)), offset=len(records), **filters
        )
        records.extend(page)
        if len(page) < 1000:
            return records, False
    return records, True


@background_task(name="cleanup_old_data", queue=TaskQueue.LOW)
def cleanup_old_data(days: int = 30) -> dict[str, Any]:
    """Delete finished task records older than `days` days."""
    deleted = current_task().engine.task_service.delete_finished(older_than_days=days)
    return {"deleted": deleted, "older_than_days": days}


def _duration_figures(durations: list[float]) -> dict[str, float | None]:
    if not durations:
        return {"mean": None, "max": None, "median": None}
    return {
        "mean": statistics.fmean(durations),
        "max": max(durations),
        "median": statistics.median(durations),
    }


@background_task(name="aggregate_analytics", queue=TaskQueue.LOW)
def aggregate_analytics(period: str = "hourly") -> dict[str, Any]:
    """Count tasks per queue and per task name, with durations, over the last period."""
    if period not in PERIODS:
        raise InvalidArgumentError(
            f"invalid period {period!r}: use one of {', '.join(PERIODS)}"
        )
    engine = current_task().engine
    now = engine.clock()
    since = now - PERIODS[period]
    records, truncated = _records(
        engine.task_service, MAX_ANALYTICS_RECORDS, created_after=since
    )
    groups: dict[str, dict[str, dict[str, Any]]] = {"queues": {}, "tasks": {}}
    durations: dict[tuple[str, str], list[float]] = {}
    for record in records:
        for kind, key in (("queues", record.queue.value), ("tasks", record.task_name)):
            entry = groups[kind].setdefault(key, {"total": 0, "statuses": {}})
            entry["total"] += 1
            entry["statuses"][record.status.value] = (
                entry["statuses"].get(record.status.value, 0) + 1
            )
            if record.finished_at is not None and record.started_at is not None:
                durations.setdefault((kind, key), []).append(
                    record.finished_at - record.started_at
                )
    for (kind, key), values in durations.items():
        groups[kind][key]["duration_seconds"] = _duration_figures(values)
    return {
        "period": period,
        "from": dt.datetime.fromtimestamp(since, dt.timezone.utc).isoformat(),
        "to": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(),
        "records": len(records),
        "truncated": truncated,
        **groups,
    }


@background_task(name="export_tasks", queue=TaskQueue.DEFAULT)
def export_tasks(
    format: str = "csv",
    status: str | None = None,
    queue: str | None = None,
    task_name: str | None = None,
    text: str | None = None,
    limit: int = 10_000,
) -> str:
    """Write matching task records to a CSV or JSON file; return the file's path."""
    if format not in ("csv", "json"):
        raise InvalidArgumentError(f"invalid format {format!r}: use csv or json")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"invalid limit {limit!r}: pass 1 or more records")
    engine = current_task().engine
    records, _ = _records(
        engine.task_service,
        limit,
        status=status,
        queue=queue,
        task_name=task_name,
        text=text,
    )
    folder = Path(engine.data_dir) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"tasks-{stamp}-{current_task().task_id[:8]}.{format}"
    rows = [record.to_dict() for record in records]
    if format == "json":
        path.write_text(
            json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8"
        )
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=EXPORT_FIELDS, extrasaction="ignore"
            )
            writer.writeheader()
            for row in rows:
                for key in ("args", "kwargs", "result"):
                    row[key] = json.dumps(row[key], ensure_ascii=False)
                writer.writerow(row)
    return str(path)
