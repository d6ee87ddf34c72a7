"""The columns of the task table and the text each shows for a record."""

from __future__ import annotations

import collections
import enum
import weakref
from typing import Any

from ..models import TaskRecord, TaskSort
from ..preview import (
    ROW_PREVIEW_CHARS,
    TOOLTIP_PREVIEW_CHARS,
    arguments_value,
    compact_json,
    cut_text,
)
from .style import format_duration, format_time, status_label


class TaskColumn(enum.IntEnum):
    """The columns of the task table, in order."""

    ID = 0
    TASK = 1
    QUEUE = 2
    PRIORITY = 3
    STATUS = 4
    ATTEMPTS = 5
    CREATED = 6
    STARTED = 7
    DURATION = 8
    PROGRESS = 9
    WORKER = 10
    ARGUMENTS = 11
    RESULT = 12


COLUMN_TITLES = {
    TaskColumn.ID: "Id",
    TaskColumn.TASK: "Task",
    TaskColumn.QUEUE: "Queue",
    TaskColumn.PRIORITY: "Priority",
    TaskColumn.STATUS: "Status",
    TaskColumn.ATTEMPTS: "Attempts",
    TaskColumn.CREATED: "Created",
    TaskColumn.STARTED: "Started",
    TaskColumn.DURATION: "Duration",
    TaskColumn.PROGRESS: "Progress",
    TaskColumn.WORKER: "Worker",
    TaskColumn.ARGUMENTS: "Arguments",
    TaskColumn.RESULT: "Result",
}
#: Columns whose text is right-aligned.
NUMERIC_COLUMNS = frozenset(
    {TaskColumn.PRIORITY, TaskColumn.ATTEMPTS, TaskColumn.DURATION}
)
#: The ledger's sort key behind each column that can sort.
COLUMN_SORTS = {
    TaskColumn.TASK: TaskSort.TASK_NAME,
    TaskColumn.QUEUE: TaskSort.QUEUE,
    TaskColumn.PRIORITY: TaskSort.PRIORITY,
    TaskColumn.STATUS: TaskSort.STATUS,
    TaskColumn.ATTEMPTS: TaskSort.ATTEMPTS,
    TaskColumn.CREATED: TaskSort.CREATED,
    TaskColumn.STARTED: TaskSort.STARTED,
    TaskColumn.DURATION: TaskSort.DURATION,
}
#: The column of the default order, newest first.
DEFAULT_SORT_COLUMN = TaskColumn.CREATED
_SORT_NOTES = {
    TaskSort.STATUS: " (by the stored name, such as pending or success)",
    TaskSort.DURATION: " (running and waiting tasks sort as shortest)",
    TaskSort.STARTED: " (tasks not started yet sort as earliest)",
}


def column_of_sort(sort: TaskSort) -> TaskColumn:
    """Return the column that shows the sort key."""
    return next(column for column, key in COLUMN_SORTS.items() if key is sort)


def cell_text(record: TaskRecord, column: TaskColumn) -> str:
    """Return the text a cell of `column` shows for `record`."""
    if column is TaskColumn.ID:
        return record.task_id
    if column is TaskColumn.TASK:
        return record.task_name
    if column is TaskColumn.QUEUE:
        return record.queue.value
    if column is TaskColumn.PRIORITY:
        return str(record.priority)
    if column is TaskColumn.STATUS:
        text = status_label(record.status)
        if record.cancel_requested and not record.status.is_final:
            text += " (cancel requested)"
        return text
    if column is TaskColumn.ATTEMPTS:
        return f"{record.attempts}/{record.max_retries + 1}"
    if column is TaskColumn.CREATED:
        return format_time(record.created_at)
    if column is TaskColumn.STARTED:
        return format_time(record.started_at)
    if column is TaskColumn.DURATION:
        return format_duration(record.duration_seconds)
    if column is TaskColumn.PROGRESS:
        if record.progress is None:
            return ""
        return f"{record.progress:.0%}"
    if column is TaskColumn.ARGUMENTS:
        return cut_text(_value_json(record, column), ROW_PREVIEW_CHARS)
    if column is TaskColumn.RESULT:
        if record.result is None:
            return ""
        return cut_text(_value_json(record, column), ROW_PREVIEW_CHARS)
    return record.worker or ""


def cell_tooltip(record: TaskRecord, column: TaskColumn) -> str | None:
    """Return the tooltip of a cell, or None where its text is enough."""
    if column is TaskColumn.STATUS and record.error:
        return record.error
    if column is TaskColumn.ATTEMPTS:
        return f"attempt {record.attempts} of {record.max_retries + 1}"
    if column is TaskColumn.PROGRESS and record.progress_message:
        return record.progress_message
    if column in (TaskColumn.ID, TaskColumn.TASK, TaskColumn.WORKER):
        return cell_text(record, column) or None
    if column is TaskColumn.ARGUMENTS or (
        column is TaskColumn.RESULT and record.result is not None
    ):
        # A tooltip of a whole 1 MiB value would stall the GUI thread.
        return cut_text(_value_json(record, column), TOOLTIP_PREVIEW_CHARS)
    return None


#: JSON of recently shown values by record object, because a view requests
#: every cell on each repaint and encoding a 1 MiB value takes milliseconds.
#: A weak reference checks that the object is still the one encoded.
_json_cache: collections.OrderedDict[
    tuple[int, TaskColumn], tuple[weakref.ref[TaskRecord], str]
] = collections.OrderedDict()
_JSON_CACHE_SIZE = 512


def _value_json(record: TaskRecord, column: TaskColumn) -> str:
    """Return the JSON of the record's arguments or result, cached per record."""
    key = (id(record), column)
    entry = _json_cache.get(key)
    if entry is not None and entry[0]() is record:
        _json_cache.move_to_end(key)
        return entry[1]
    value: Any = record.result
    if column is TaskColumn.ARGUMENTS:
        value = arguments_value(record)
    text = compact_json(value)
    _json_cache[key] = (weakref.ref(record), text)
    _json_cache.move_to_end(key)
    if len(_json_cache) > _JSON_CACHE_SIZE:
        _json_cache.popitem(last=False)
    return text


def header_tooltip(column: TaskColumn, sortable: bool) -> str:
    """Return the header tooltip, which tells whether a click sorts by the column."""
    if not sortable:
        return f"{COLUMN_TITLES[column]}: this column does not sort"
    note = _SORT_NOTES.get(COLUMN_SORTS[column], "")
    return f"Click to sort by {COLUMN_TITLES[column].lower()}{note}"
