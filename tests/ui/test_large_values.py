"""Large arguments and results in the window: cut in the table, whole in the detail."""

from __future__ import annotations

import json
from typing import Any

from chenu_desktop import TaskQueue, TaskStatus
from chenu_desktop.models import TaskRecord
from chenu_desktop.preview import ROW_PREVIEW_CHARS, TOOLTIP_PREVIEW_CHARS
from chenu_desktop.ui.task_columns import TaskColumn, cell_text, cell_tooltip
from chenu_desktop.ui.task_detail import TaskDetailPanel, format_json

#: About 880 KiB of JSON, under the default max_argument_bytes of 1 MiB.
LARGE = ["données", 7] * 60_000


def make_record(**fields: Any) -> TaskRecord:
    return TaskRecord(
        task_id="large-1",
        task_name="reports.build",
        queue=TaskQueue.DEFAULT,
        priority=6,
        status=TaskStatus.SUCCESS,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_001.0,
        **fields,
    )


def test_table_cells_cut_large_values() -> None:
    record = make_record(kwargs={"rows": LARGE}, result=LARGE)

    for column in (TaskColumn.ARGUMENTS, TaskColumn.RESULT):
        text = cell_text(record, column)
        tooltip = cell_tooltip(record, column)
        assert len(text) < ROW_PREVIEW_CHARS + 40, column
        assert text.endswith("KiB in all)"), column
        assert "(truncated, " in text, column
        assert len(tooltip) < TOOLTIP_PREVIEW_CHARS + 40, column
        assert "(truncated, " in tooltip, column
    assert cell_text(record, TaskColumn.ARGUMENTS).startswith('{"rows": ["données", 7')
    assert cell_text(record, TaskColumn.RESULT).startswith('["données", 7, ')


def test_table_cells_small_values_whole() -> None:
    record = make_record(args=[1], kwargs={"a": "b"}, result={"ok": True})

    assert (
        cell_text(record, TaskColumn.ARGUMENTS) == '{"args": [1], "kwargs": {"a": "b"}}'
    )
    assert cell_text(record, TaskColumn.RESULT) == '{"ok": true}'
    assert cell_tooltip(record, TaskColumn.RESULT) == '{"ok": true}'
    assert cell_text(make_record(), TaskColumn.RESULT) == ""
    assert cell_tooltip(make_record(), TaskColumn.RESULT) is None


def test_detail_shows_large_values_whole(qtbot) -> None:
    record = make_record(kwargs={"rows": LARGE}, result=LARGE)
    assert len(json.dumps(record.kwargs, ensure_ascii=False).encode()) > 800 * 1024
    panel = TaskDetailPanel()
    qtbot.addWidget(panel)
    panel.show()

    panel.show_record(record)

    arguments = format_json({"args": [], "kwargs": {"rows": LARGE}})
    assert panel.arguments_box.toPlainText() == arguments
    assert panel.result_box.toPlainText() == format_json(LARGE)
    assert "truncated" not in panel.result_box.toPlainText()
