"""One-line previews of stored JSON values for lists, cut with a note of the size."""

from __future__ import annotations

import json
from typing import Any

from .models import TaskRecord

#: Characters of a preview in a list row or a table cell.
ROW_PREVIEW_CHARS = 60
#: Characters of a preview in a tooltip, which shows more than its cell.
TOOLTIP_PREVIEW_CHARS = 1000


def format_size(size: int) -> str:
    """Format a size in bytes as B, KiB or MiB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def compact_json(value: Any) -> str:
    """Encode a value as JSON on one line: line breaks in strings stay escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def cut_text(text: str, max_chars: int) -> str:
    """Return `text`, or its first `max_chars` characters and the whole size.

    The size is that of the whole text in UTF-8, such as
    ``"[1, 2, … (truncated, 1.0 MiB in all)"``.
    """
    if len(text) <= max_chars:
        return text
    size = format_size(len(text.encode("utf-8")))
    return f"{text[:max_chars]}… (truncated, {size} in all)"


def json_preview(value: Any, max_chars: int = ROW_PREVIEW_CHARS) -> str:
    """Return `value` as one line of JSON, cut to `max_chars` with the whole size."""
    return cut_text(compact_json(value), max_chars)


def arguments_value(record: TaskRecord) -> Any:
    """Return the arguments to preview: the keywords alone when there are no others."""
    if not record.args:
        return record.kwargs
    return {"args": record.args, "kwargs": record.kwargs}
