"""The dialog that adds or edits a cron schedule, validating as the operator types."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import zoneinfo
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import cron
from ..registry import APPROVER_PARAMETER
from ..scheduling.store import MISFIRE_RUN_ONCE, MISFIRE_SKIP
from .style import error_style, format_relative

if TYPE_CHECKING:
    from ..engine import Engine
    from ..scheduling.service import ScheduleInfo
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

#: Zones offered first in the zone box; any IANA name may be typed.
COMMON_ZONES: tuple[str, ...] = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Africa/Johannesburg",
)
#: Fire times previewed under the expression.
PREVIEW_COUNT = 5
#: Grace window of a new schedule, as the scheduler's own default (one hour).
DEFAULT_GRACE_SECONDS = 3600
_MISFIRE_CHOICES = (
    (MISFIRE_SKIP, "Skip missed runs (record them only)"),
    (MISFIRE_RUN_ONCE, "Run once to catch up, within the grace window"),
)


class ScheduleDialog(QDialog):
    """Add a schedule, or edit one when `schedule` is given.

    The expression and zone are validated locally on every change (cron
    validation is pure, so it runs on the GUI thread), with the description
    and the next fires in the chosen zone. Saving goes through the runner,
    and a rejection by the service shows in the dialog, which stays open.

    Signals:
        schedule_saved(object): the service stored the schedule; the payload
            is the `ScheduleInfo` it returned. The dialog closes afterwards.
    """

    schedule_saved = Signal(object)

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        schedule: ScheduleInfo | None = None,
        operator: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._runner = runner
        self._original = schedule
        self._operator = operator
        self._tasks: dict[str, dict[str, Any]] = {}
        self._tasks_loaded = False
        self._saving = False
        self._expression_valid = False
        self._kwargs_valid = True
        self._filled_kwargs_text = ""

        self.setObjectName("schedule_dialog")
        self.setWindowTitle(
            f"Edit schedule {schedule.name}" if schedule else "Add schedule"
        )
        self.setAccessibleName(self.windowTitle())
        self._build()
        self._load_values(schedule)
        self.setMinimumWidth(620)
        self._load_tasks()
        self._validate_expression()
        self._validate_kwargs()

    # --- public API ------------------------------------------------------------

    def is_editing(self) -> bool:
        return self._original is not None

    def tasks_loaded(self) -> bool:
        return self._tasks_loaded

    def select_task(self, name: str) -> bool:
        """Choose the task `name`; return False if the list does not contain it."""
        index = self._task_combo.findData(name)
        if index < 0:
            return False
        self._task_combo.setCurrentIndex(index)
        return True

    def ok_button(self) -> QPushButton:
        return self._buttons.button(QDialogButtonBox.StandardButton.Save)

    def expression_message(self) -> str:
        """Return the validation message under the expression ("" when valid)."""
        return self._expression_message.text()

    def next_runs(self) -> list[str]:
        """Return the previewed fire times as shown, one per run."""
        text = self._next_runs_label.text()
        return text.splitlines()[1:] if text else []

    def values(self) -> dict[str, Any]:
        """Return the form's fields as the service's keyword arguments."""
        return {
            "name": self._name_edit.text().strip(),
            "task_name": self._task_combo.currentData() or "",
            "schedule": self._expression_edit.text().strip(),
            "timezone": self._zone_combo.currentText().strip(),
            "misfire": self._misfire_combo.currentData(),
            "grace_seconds": float(self._grace_spin.value()),
            "task_kwargs": self._parsed_kwargs(),
        }

    # --- building --------------------------------------------------------------

    def _build(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        self._name_edit = self._line_edit("name_edit", "Name", "nightly_export")
        self._name_edit.textChanged.connect(self._update_ok_button)
        form.addRow("&Name:", self._name_edit)

        self._task_combo = QComboBox(self)
        self._task_combo.setObjectName("task_combo")
        self._task_combo.setAccessibleName("Task")
        self._task_combo.addItem("Loading tasks…")
        self._task_combo.setEnabled(False)
        self._task_combo.currentIndexChanged.connect(self._on_task_combo_changed)
        self._task_combo.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed
        )
        self._task_info = self._note_label("task_info", reserve_lines=2)
        form.addRow("&Task:", self._task_combo)
        form.addRow("", self._task_info)

        self._expression_edit = self._line_edit(
            "expression_edit", "Cron expression", "0 9 * * 1-5"
        )
        self._expression_edit.textChanged.connect(self._validate_expression)
        field_help = self._note_label("expression_help")
        field_help.setText(
            "minute  hour  day-of-month  month  day-of-week, or @daily, @hourly…"
        )
        field_help.setVisible(True)
        self._expression_message = self._note_label("expression_message", 2)
        self._expression_message.setStyleSheet(error_style())
        form.addRow("&Cron expression:", self._expression_edit)
        form.addRow("", field_help)
        form.addRow("", self._expression_message)

        self._zone_combo = self._build_zone_combo()
        form.addRow("Time &zone:", self._zone_combo)

        # Room for the longest preview, so the dialog keeps its size while typing.
        self._description_label = self._note_label("description_label", 2)
        self._next_runs_label = self._note_label("next_runs_label", PREVIEW_COUNT + 1)
        self._next_runs_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        form.addRow("Runs:", self._description_label)
        form.addRow("", self._next_runs_label)

        self._misfire_combo = QComboBox(self)
        self._misfire_combo.setObjectName("misfire_combo")
        self._misfire_combo.setAccessibleName("Missed runs")
        for policy, label in _MISFIRE_CHOICES:
            self._misfire_combo.addItem(label, policy)
        self._misfire_combo.currentIndexChanged.connect(self._on_misfire_changed)
        form.addRow("&Missed runs:", self._misfire_combo)

        self._grace_spin = QSpinBox(self)
        self._grace_spin.setObjectName("grace_spin")
        self._grace_spin.setAccessibleName("Grace window in seconds")
        self._grace_spin.setRange(0, 2**31 - 1)
        self._grace_spin.setSuffix(" s")
        self._grace_spin.setToolTip(
            "A catch-up run happens only if the newest missed fire is at most this "
            "many seconds old."
        )
        form.addRow("&Grace window:", self._grace_spin)

        self._kwargs_edit = QPlainTextEdit(self)
        self._kwargs_edit.setObjectName("kwargs_edit")
        self._kwargs_edit.setAccessibleName("Task arguments as JSON")
        self._kwargs_edit.setPlaceholderText('{"days": 30}')
        self._kwargs_edit.setTabChangesFocus(True)
        self._kwargs_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 5)
        self._kwargs_edit.textChanged.connect(self._validate_kwargs)
        self._kwargs_message = self._note_label("kwargs_message")
        self._kwargs_message.setStyleSheet(error_style())
        form.addRow("Task &arguments (JSON):", self._kwargs_edit)
        form.addRow("", self._kwargs_message)

        self._approval_note = self._note_label("approval_note")
        self._save_error = self._note_label("save_error")
        self._save_error.setStyleSheet(error_style())

        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Cancel,
            self,
        )
        self._buttons.accepted.connect(self._on_save_clicked)
        self._buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self._approval_note)
        layout.addWidget(self._save_error)
        layout.addWidget(self._buttons)

    def _line_edit(self, name: str, accessible: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setObjectName(name)
        edit.setAccessibleName(accessible)
        edit.setPlaceholderText(placeholder)
        return edit

    def _note_label(self, name: str, reserve_lines: int = 0) -> QLabel:
        """Create a note; with `reserve_lines` it keeps that height when empty."""
        label = QLabel(self)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        if reserve_lines:
            label.setMinimumHeight(self.fontMetrics().lineSpacing() * reserve_lines)
            label.setProperty("reserved", True)
        else:
            label.setVisible(False)
        return label

    def _build_zone_combo(self) -> QComboBox:
        combo = QComboBox(self)
        combo.setObjectName("zone_combo")
        combo.setAccessibleName("Time zone")
        combo.setEditable(True)
        combo.setMinimumContentsLength(24)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        local = cron.local_zone_name()
        zones = [local, *(zone for zone in COMMON_ZONES if zone != local)]
        combo.addItems(zones)
        completer = QCompleter(sorted(zoneinfo.available_timezones()), combo)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        combo.setCompleter(completer)
        combo.setToolTip(f"IANA time zone name; this machine's zone is {local}")
        combo.editTextChanged.connect(self._validate_expression)
        return combo

    def _load_values(self, schedule: ScheduleInfo | None) -> None:
        if schedule is None:
            self._misfire_combo.setCurrentIndex(0)
            self._grace_spin.setValue(DEFAULT_GRACE_SECONDS)
            self._on_misfire_changed()
            return
        self._name_edit.setText(schedule.name)
        self._name_edit.setReadOnly(True)
        self._name_edit.setToolTip(
            "A schedule keeps its name; add a new one to rename it"
        )
        self._expression_edit.setText(schedule.expression)
        self._zone_combo.setEditText(schedule.timezone)
        index = self._misfire_combo.findData(schedule.misfire)
        self._misfire_combo.setCurrentIndex(max(0, index))
        self._grace_spin.setValue(int(schedule.grace_seconds))
        self._on_misfire_changed()
        self._set_kwargs_text(json.dumps(schedule.kwargs, indent=1, sort_keys=True))

    # --- tasks -----------------------------------------------------------------

    def _load_tasks(self) -> None:
        self._runner.run(
            self._engine.task_service.registered_tasks,
            on_result=self._on_tasks_loaded,
            on_error=self._on_tasks_failed,
        )

    def _on_tasks_loaded(self, tasks: list[dict[str, Any]]) -> None:
        if not shiboken6.isValid(self):
            return  # Closed and deleted while the tasks were loading.
        self._tasks = {task["name"]: task for task in tasks}
        combo = self._task_combo
        combo.blockSignals(True)
        combo.clear()
        for name in sorted(self._tasks):
            label = name
            if self._tasks[name].get("requires_governance"):
                label += "  (governance)"
            combo.addItem(label, name)
        current_task_name = self._original.task_name if self._original else None
        if current_task_name is not None and current_task_name not in self._tasks:
            combo.addItem(f"{current_task_name}  (not registered)", current_task_name)
        combo.setCurrentIndex(
            max(0, combo.findData(current_task_name)) if current_task_name else 0
        )
        combo.blockSignals(False)
        combo.setEnabled(bool(self._tasks) or current_task_name is not None)
        self._tasks_loaded = True
        self._on_task_combo_changed()
        self.adjustSize()

    def _on_tasks_failed(self, message: str) -> None:
        if not shiboken6.isValid(self):
            return
        self._task_combo.setItemText(0, "Tasks could not be loaded")
        self._show_save_error(f"Loading the registered tasks failed: {message}")

    def _on_task_combo_changed(self) -> None:
        name = self._task_combo.currentData()
        task = self._tasks.get(name) if name else None
        if task is None:
            self._set_note(self._task_info, "")
            self._set_note(self._approval_note, "")
            self._update_ok_button()
            return
        info = f"Runs on the {task.get('queue')} queue."
        if task.get("description"):
            info += f" {task['description']}"
        self._set_note(self._task_info, info)
        self._task_info.setToolTip(task.get("signature", ""))
        self._set_note(self._approval_note, self._approval_text(task))
        if (
            not self.is_editing()
            and self._kwargs_edit.toPlainText() == self._filled_kwargs_text
        ):
            self._set_kwargs_text(_default_kwargs_text(task))
        self._update_ok_button()

    def _approval_text(self, task: dict[str, Any]) -> str:
        if not task.get("requires_governance"):
            return ""
        if not self._operator:
            return (
                "This governance task needs an approver: set the operator name first."
            )
        return (
            f"This task needs governance approval: saving approves the schedule's "
            f"runs as {self._operator}."
        )

    def _selected_task(self) -> dict[str, Any] | None:
        name = self._task_combo.currentData()
        return self._tasks.get(name) if name else None

    # --- validation ------------------------------------------------------------

    def _validate_expression(self) -> None:
        expression = self._expression_edit.text()
        zone = self._zone_combo.currentText().strip()
        try:
            schedule = cron.validate(expression, zone)
        except cron.InvalidScheduleError as error:
            self._show_invalid_expression(error)
            return
        now = dt.datetime.fromtimestamp(self._engine.clock(), dt.UTC)
        fires = cron.next_fires(schedule, now, PREVIEW_COUNT)
        self._expression_valid = True
        self._expression_edit.setAccessibleDescription("")
        self._set_note(self._expression_message, "")
        self._set_note(self._description_label, cron.describe(schedule))
        if fires:
            lines = [f"Next {len(fires)} runs ({schedule.timezone}):"]
            lines += [_format_fire(fire) for fire in fires]
            lines[1] += f"   ({format_relative(fires[0], now)})"
        else:
            lines = ["No upcoming run found"]
        self._set_note(self._next_runs_label, "\n".join(lines))
        self._update_ok_button()

    def _show_invalid_expression(self, error: cron.InvalidScheduleError) -> None:
        self._expression_valid = False
        empty = not self._expression_edit.text().strip() and error.field == "expression"
        message = (
            "Enter a cron expression, such as 0 9 * * 1-5" if empty else str(error)
        )
        if error.field not in message:
            message = f"{error.field}: {message}"
        self._expression_edit.setAccessibleDescription(message)
        self._set_note(self._expression_message, message)
        self._set_note(self._description_label, "")
        self._set_note(
            self._next_runs_label, "Next runs show once the expression is valid."
        )
        self._update_ok_button()

    def _validate_kwargs(self) -> None:
        try:
            self._parse_kwargs_text()
        except ValueError as error:
            self._kwargs_valid = False
            self._set_note(self._kwargs_message, str(error))
        else:
            self._kwargs_valid = True
            self._set_note(self._kwargs_message, "")
        self._update_ok_button()

    def _parse_kwargs_text(self) -> dict[str, Any]:
        text = self._kwargs_edit.toPlainText().strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
        if not isinstance(value, dict):
            raise ValueError(
                'Task arguments must be a JSON object of names and values, such as {"days": 30}'
            )
        return value

    def _parsed_kwargs(self) -> dict[str, Any]:
        try:
            return self._parse_kwargs_text()
        except ValueError:
            return {}

    def _update_ok_button(self) -> None:
        task = self._selected_task()
        needs_operator = bool(
            task and task.get("requires_governance") and not self._operator
        )
        ready = (
            self._expression_valid
            and self._kwargs_valid
            and self._tasks_loaded
            and bool(self._task_combo.currentData())
            and bool(self._name_edit.text().strip())
            and not needs_operator
            and not self._saving
        )
        self.ok_button().setEnabled(ready)

    def _on_misfire_changed(self) -> None:
        run_once = self._misfire_combo.currentData() == MISFIRE_RUN_ONCE
        self._grace_spin.setEnabled(run_once)

    # --- saving ----------------------------------------------------------------

    def _on_save_clicked(self) -> None:
        if not self.ok_button().isEnabled():
            return
        values = self.values()
        task = self._selected_task()
        approver = self._operator if task and task.get("requires_governance") else None
        service = self._engine.scheduler_service
        self._set_saving(True)
        if self._original is None:
            self._runner.run(
                service.add_schedule,
                values["name"],
                values["task_name"],
                values["schedule"],
                timezone=values["timezone"],
                misfire=values["misfire"],
                grace_seconds=values["grace_seconds"],
                approved_by=approver,
                task_kwargs=values["task_kwargs"],
                on_result=self._on_saved,
                on_error=self._on_save_failed,
            )
            return
        self._runner.run(
            service.update_schedule,
            self._original.name,
            schedule=values["schedule"],
            timezone=values["timezone"],
            task_name=values["task_name"],
            misfire=values["misfire"],
            grace_seconds=values["grace_seconds"],
            approved_by=approver,
            task_kwargs=values["task_kwargs"],
            on_result=self._on_saved,
            on_error=self._on_save_failed,
        )

    def _on_saved(self, info: ScheduleInfo) -> None:
        logger.info("schedule %s saved from the window", info.name)
        if not shiboken6.isValid(self):
            # NOTE: closing the dialog does not cancel a save under way. The
            # saved schedule then shows with the feed's next schedules poll.
            return
        self._set_saving(False)
        self.schedule_saved.emit(info)
        self.accept()

    def _on_save_failed(self, message: str) -> None:
        if not shiboken6.isValid(self):
            logger.warning(
                "saving a schedule failed after its dialog closed: %s", message
            )
            return
        self._set_saving(False)
        self._show_save_error(f"Saving failed: {message}")

    def _set_saving(self, saving: bool) -> None:
        self._saving = saving
        if saving:
            self._set_note(self._save_error, "")
        self._update_ok_button()

    def _show_save_error(self, message: str) -> None:
        self._set_note(self._save_error, message)

    # --- helpers ---------------------------------------------------------------

    def _set_kwargs_text(self, text: str) -> None:
        self._filled_kwargs_text = text
        self._kwargs_edit.setPlainText(text)

    @staticmethod
    def _set_note(label: QLabel, text: str) -> None:
        label.setText(text)
        if not label.property("reserved"):
            label.setVisible(bool(text))


def _default_kwargs_text(task: dict[str, Any]) -> str:
    """Return the JSON of the task's keyword defaults, to start the arguments from."""
    defaults: dict[str, Any] = {}
    for parameter in task.get("parameters", []):
        keyword_kind = parameter.get("kind") in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD.name,
            inspect.Parameter.KEYWORD_ONLY.name,
        )
        if not keyword_kind or parameter["name"] == APPROVER_PARAMETER:
            continue
        if "default" in parameter:
            defaults[parameter["name"]] = parameter["default"]
    try:
        return json.dumps(defaults, indent=1, sort_keys=True) if defaults else ""
    except TypeError:
        return ""  # A default that JSON cannot hold; the operator types the arguments.


def _format_fire(when: dt.datetime) -> str:
    return when.strftime("%a %Y-%m-%d %H:%M %Z")
