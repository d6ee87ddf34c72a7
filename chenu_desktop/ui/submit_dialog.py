"""The dialog that submits a registered task with validated arguments."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ..models import TaskPriority
from .style import error_style

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

_NO_DEFAULT = object()


def parse_argument(text: str) -> Any:
    """Read a field as JSON when it parses (``3``, ``true``, ``[1]``), else as text."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        return text


class SubmitTaskDialog(QDialog):
    """Pick a registered task, fill its arguments, priority and delay, submit.

    Arguments are checked against the task's signature by the engine; its
    message shows under the form and the dialog stays open.

    Signals:
        task_submitted(str): the new task id, after a successful submit.
    """

    task_submitted = Signal(str)

    def __init__(
        self, engine: Engine, runner: BackgroundRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("submit_dialog")
        self.setWindowTitle("Submit a task")
        self._engine = engine
        self._runner = runner
        self._tasks: dict[str, dict[str, Any]] = {}
        self._fields: dict[str, QLineEdit] = {}

        self.task_combo = QComboBox(objectName="submit_task_combo")
        self.task_combo.setAccessibleName("Task")
        self.task_combo.currentTextChanged.connect(self._on_task_changed)
        self.description = QLabel(objectName="submit_description", wordWrap=True)
        self.arguments = QFormLayout()
        self.priority_combo = QComboBox(objectName="submit_priority")
        self.priority_combo.setAccessibleName("Priority")
        self.priority_combo.addItem("task default", None)
        for priority in TaskPriority:
            self.priority_combo.addItem(
                f"{priority.name.lower()} ({priority.value})", int(priority)
            )
        self.delay = QDoubleSpinBox(objectName="submit_delay", suffix=" s")
        self.delay.setAccessibleName("Delay in seconds")
        self.delay.setRange(0, 365 * 86400)
        self.delay.setDecimals(1)
        self.error = QLabel(objectName="submit_error", wordWrap=True)
        self.error.setStyleSheet(error_style())
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Submit")
        self.buttons.accepted.connect(self._on_submit_clicked)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Task", self.task_combo)
        form.addRow("", self.description)
        form.addRow("Priority", self.priority_combo)
        form.addRow("Delay", self.delay)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(
            QLabel("<b>Arguments</b> (JSON values; plain text is a string)")
        )
        layout.addLayout(self.arguments)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._set_busy(True)
        self._runner.run(
            engine.task_service.registered_tasks,
            on_result=self._on_tasks_loaded,
            on_error=self._show_error,
        )

    def _set_busy(self, busy: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not busy)

    def _on_tasks_loaded(self, tasks: list[dict[str, Any]]) -> None:
        self._tasks = {task["name"]: task for task in tasks}
        self.task_combo.addItems(sorted(self._tasks))
        self._set_busy(False)

    def select_task(self, name: str) -> None:
        self.task_combo.setCurrentText(name)

    def _on_task_changed(self, name: str) -> None:
        while self.arguments.rowCount():
            self.arguments.removeRow(0)
        self._fields.clear()
        task = self._tasks.get(name)
        if task is None:
            return
        self.description.setText(
            f"<code>{task['signature']}</code><br>{task['description']}"
        )
        for parameter in task["parameters"]:
            if task["requires_governance"] and parameter["name"] == "approved_by":
                continue
            if parameter["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
                continue
            field = QLineEdit(objectName=f"submit_arg_{parameter['name']}")
            field.setAccessibleName(f"Argument {parameter['name']}")
            if "default" in parameter:
                field.setPlaceholderText(f"default: {json.dumps(parameter['default'])}")
            else:
                field.setPlaceholderText("required")
            label = parameter["name"]
            if "annotation" in parameter:
                label = f"{label} ({parameter['annotation']})"
            self.arguments.addRow(label, field)
            self._fields[parameter["name"]] = field
        self.error.clear()

    def values(self) -> dict[str, Any]:
        """Return the filled-in arguments; empty fields are left to their defaults."""
        return {
            name: parse_argument(field.text())
            for name, field in self._fields.items()
            if field.text().strip()
        }

    def _on_submit_clicked(self) -> None:
        name = self.task_combo.currentText()
        if not name:
            self._show_error("no task selected: pick a registered task")
            return
        kwargs = self.values()
        priority = self.priority_combo.currentData()
        delay = self.delay.value() or None
        self._set_busy(True)
        self.error.clear()
        self._runner.run(
            self._engine.task_service.submit_as_operator,
            name,
            kwargs=kwargs,
            priority=priority,
            countdown=delay,
            on_result=self._on_submitted,
            on_error=self._on_submit_failed,
        )

    def _on_submitted(self, task_id: str) -> None:
        self._set_busy(False)
        self.task_submitted.emit(task_id)
        self.accept()

    def _on_submit_failed(self, message: str) -> None:
        self._set_busy(False)
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
