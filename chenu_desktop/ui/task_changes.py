"""The planning of change-feed entries onto the loaded rows of the task table."""

from __future__ import annotations

from collections.abc import Sequence

from ..models import FINAL_STATUSES, Change, TaskFilter, TaskStatus
from .task_rows import TaskRows

#: Changed rows re-read one by one at most. Beyond this the model resyncs.
MAX_REFRESHED_RECORDS = 200
#: Statuses a record never leaves. LOST is final, but the reaper moves a
#: lost task that is safe to repeat on to RETRYING.
SETTLED_STATUSES = FINAL_STATUSES - {TaskStatus.LOST}


def plan_refresh(
    changes: Sequence[Change], task_filter: TaskFilter, rows: TaskRows
) -> tuple[list[str], bool] | None:
    """Return the loaded ids to re-read and whether new tasks may have come.

    Returns None when the changes may move rows in or out of the middle
    of the list, which only a resync can place.
    """
    relevant = [
        change
        for change in changes
        if task_filter.queue is None or change.queue is task_filter.queue
    ]
    if any(change.deleted for change in relevant):
        return None
    if relevant and task_filter.text:
        # A new error message can bring any task into a text search.
        return None
    loaded: dict[str, None] = {}
    may_add = False
    for change in relevant:
        row = rows.row_of(change.task_id)
        if row is not None:
            record = rows.record(row)
            if task_filter.status is not None and (
                change.status is not task_filter.status
                or (record is not None and record.status is not task_filter.status)
            ):
                return None
            loaded[change.task_id] = None
        elif task_filter.status is None:
            may_add = True
        elif not (
            task_filter.status in SETTLED_STATUSES
            and change.status is not task_filter.status
        ):
            return None
        # Otherwise the task cannot have left the status, so it was never listed.
    if len(loaded) > MAX_REFRESHED_RECORDS:
        return None
    return list(loaded), may_add


def row_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Return (first, last) of each run of consecutive numbers in sorted `rows`."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        elif not runs or row != runs[-1][1]:
            runs.append((row, row))
    return runs
