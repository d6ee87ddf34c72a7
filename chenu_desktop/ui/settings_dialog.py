"""The Settings dialog: edits the configuration file and reports what changed.

The dialog shows the settings in force, checks every field as it is edited,
and on OK writes the fields that changed to the configuration file with
`save_config` (keeping the file's other keys and its comments). It needs no
storage or Redis I/O, only the small file write on OK.

Use from the window::

    dialog = SettingsDialog(engine.config, parent=window)
    dialog.settings_saved.connect(window._on_settings_saved)
    dialog.open()

    def _on_settings_saved(self, change: SettingsChange) -> None:
        self.engine.config = change.merged_into(self.engine.config)
        if "workers" in change.live_fields:
            ...  # engine.pool.resize(queue, count) for each queue
        if "theme" in change.live_fields:
            apply_theme(QApplication.instance(), change.config.theme)
        if change.restart_fields:
            ...  # tell the operator to restart

`change.live_fields` contains the changed fields that apply at once
(`workers`, `retention_days`, `theme`, `operator`, `close_to_tray`), and
`change.restart_fields` those that take effect at the next start (`backend`,
`namespace`). The names are those of `Config` attributes and of the file's
keys.

The Redis password is typed into a password field and stays masked. A password
typed into the URL field moves to that field when the URL field loses focus, and
OK stays disabled until it does. Every URL that the dialog logs or puts in a
message goes through `mask_url`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..backend import join_password, mask_url, parse_backend, split_password
from ..config import (
    BACKEND_VARIABLE,
    MAX_WORKERS_PER_QUEUE,
    Config,
    config_file_path,
    config_from_mapping,
    config_to_mapping,
    default_backend_url,
    os_user_name,
    save_config,
)
from ..errors import ChenuError
from ..models import TaskQueue
from .style import QUEUE_ORDER, error_style

logger = logging.getLogger("chenu.ui")

#: Fields that take effect only when the app starts again.
RESTART_FIELDS = frozenset({"backend", "namespace"})
#: Fields the window can apply while it runs.
LIVE_FIELDS = frozenset(
    {"workers", "retention_days", "theme", "operator", "close_to_tray"}
)
#: Largest retention the spin box offers, unless the settings have a larger one.
MAX_RETENTION_DAYS = 36_500
_SPIN_BOX_LIMIT = 2**31 - 1
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
_REDIS_EXAMPLE = "redis://127.0.0.1:6379/0"
_THEME_LABELS = {"system": "System", "light": "Light", "dark": "Dark"}
#: Initial backend value when the settings in force hold one the form rejects.
_UNREADABLE = object()


@dataclasses.dataclass(frozen=True)
class SettingsChange:
    """The outcome of an accepted Settings dialog.

    Attributes:
        config: The settings as saved: the dialog's input over the settings
            it was opened with.
        path: The configuration file written.
        changed: Names of the fields that changed (`Config` attribute names).
    """

    config: Config
    path: Path
    changed: frozenset[str]

    @property
    def live_fields(self) -> frozenset[str]:
        return self.changed & LIVE_FIELDS

    @property
    def restart_fields(self) -> frozenset[str]:
        return self.changed & RESTART_FIELDS

    def merged_into(self, running: Config) -> Config:
        """Return `running` with the live fields of this change applied.

        The backend and namespace of `running` stay, because the engine keeps
        using them until the next start.
        """
        values = {name: getattr(self.config, name) for name in self.live_fields}
        return dataclasses.replace(running, **values)


class _FieldError(Exception):
    """A form field with an invalid value, and the message that names the fix."""

    def __init__(self, widget: QWidget | None, message: str) -> None:
        super().__init__(message)
        self.widget = widget
        self.message = message


class SettingsDialog(QDialog):
    """Edit the backend, workers, retention, theme, tray and operator settings.

    OK stays disabled while a field is invalid, and a message names the field
    and the fix. OK writes the changed fields to the configuration file; a
    write that fails shows its error and keeps the dialog open.

    Signals:
        settings_saved(SettingsChange): the file was written, with the fields
            that changed. Not emitted when OK is pressed with nothing changed.

    Attributes:
        change: The accepted change, or None while the dialog is open or when
            it was cancelled.
    """

    settings_saved = Signal(object)

    def __init__(
        self,
        config: Config,
        path: Path | str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settings_dialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(480)
        self._config = config
        self.path = (
            Path(path) if path is not None else config.source or config_file_path()
        )
        self.change: SettingsChange | None = None
        self.invalid_field: QWidget | None = None

        layout = QVBoxLayout(self)
        layout.addWidget(self._build_backend_group())
        layout.addWidget(self._build_workers_group())
        layout.addWidget(self._build_general_group())
        self.message = QLabel(objectName="settings_message", wordWrap=True)
        self.message.setAccessibleName("Validation message")
        self.message.setStyleSheet(error_style())
        self.message.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        layout.addWidget(self.message)
        self.restart_note = QLabel(objectName="settings_restart_note", wordWrap=True)
        self.restart_note.setAccessibleName("Restart note")
        layout.addWidget(self.restart_note)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            objectName="settings_buttons",
        )
        self.ok_button.setAccessibleName("Save settings")
        self.buttons.accepted.connect(self._on_ok_clicked)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self._show_config(config)
        self._initial_values = self._read_initial_values()
        self._connect_fields()
        self._on_form_changed()

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    # --- layout --------------------------------------------------------------

    def _build_backend_group(self) -> QGroupBox:
        group = QGroupBox("Backend (applies after a restart)", self)
        group.setObjectName("settings_backend_group")
        self.sqlite_radio = QRadioButton("Embedded SQLite file", group)
        self.sqlite_radio.setObjectName("settings_backend_sqlite")
        self.sqlite_radio.setAccessibleName("Use an embedded SQLite file")
        self.redis_radio = QRadioButton("Redis server", group)
        self.redis_radio.setObjectName("settings_backend_redis")
        self.redis_radio.setAccessibleName("Use a Redis server")
        self._backend_kind = QButtonGroup(group)
        self._backend_kind.addButton(self.sqlite_radio)
        self._backend_kind.addButton(self.redis_radio)

        self.sqlite_path = QLineEdit(group, objectName="settings_sqlite_path")
        self.sqlite_path.setAccessibleName("SQLite file")
        default_path = parse_backend(default_backend_url()).path
        self.sqlite_path.setPlaceholderText(f"default: {default_path}")
        self.sqlite_path.setToolTip(
            "Absolute path of the SQLite file; empty for the default"
        )
        self.browse_button = QPushButton("Browse…", group)
        self.browse_button.setObjectName("settings_sqlite_browse")
        self.browse_button.setAccessibleName("Browse for the SQLite file")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.addWidget(self.sqlite_path, 1)
        path_row.addWidget(self.browse_button)

        self.redis_url = QLineEdit(group, objectName="settings_redis_url")
        self.redis_url.setAccessibleName("Redis URL")
        self.redis_url.setPlaceholderText(_REDIS_EXAMPLE)
        self.redis_url.setToolTip(
            "redis://[USER@]HOST:PORT/DB, rediss:// for TLS, or unix://PATH?db=N;"
            " the password goes in the field below"
        )
        self.redis_password = QLineEdit(group, objectName="settings_redis_password")
        self.redis_password.setAccessibleName("Redis password")
        self.redis_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.redis_password.setPlaceholderText("none")

        self.namespace = QLineEdit(group, objectName="settings_namespace")
        self.namespace.setAccessibleName("Namespace")
        self.namespace.setToolTip(
            "Prefix of every queue and ledger key: letters, digits and underscores"
        )

        form = QFormLayout(group)
        form.addRow(self.sqlite_radio)
        form.addRow("SQLite file", path_row)
        form.addRow(self.redis_radio)
        form.addRow("Redis URL", self.redis_url)
        form.addRow("Password", self.redis_password)
        form.addRow("Namespace", self.namespace)
        if os.environ.get(BACKEND_VARIABLE):
            note = QLabel(
                f"${BACKEND_VARIABLE} is set, so it overrides the backend saved here.",
                group,
                objectName="settings_environment_note",
                wordWrap=True,
            )
            form.addRow(note)
        return group

    def _build_workers_group(self) -> QGroupBox:
        group = QGroupBox("Worker threads per queue (apply at once)", self)
        group.setObjectName("settings_workers_group")
        form = QFormLayout(group)
        self.worker_spins: dict[TaskQueue, QSpinBox] = {}
        for queue in QUEUE_ORDER:
            spin = QSpinBox(group, objectName=f"settings_workers_{queue.value}")
            spin.setRange(0, MAX_WORKERS_PER_QUEUE)
            spin.setAccessibleName(f"Workers of the {queue.value} queue")
            spin.setToolTip(
                f"0 to {MAX_WORKERS_PER_QUEUE}; 0 runs no worker of this queue here"
            )
            form.addRow(queue.value.capitalize(), spin)
            self.worker_spins[queue] = spin
        return group

    def _build_general_group(self) -> QGroupBox:
        group = QGroupBox("General (applies at once)", self)
        group.setObjectName("settings_general_group")
        self.retention_days = QSpinBox(group, objectName="settings_retention_days")
        self.retention_days.setAccessibleName("Record retention in days")
        self.retention_days.setSuffix(" days")
        self.retention_days.setToolTip(
            "Age after which cleanup removes finished records"
        )
        self.theme = QComboBox(group, objectName="settings_theme")
        self.theme.setAccessibleName("Theme")
        for name, label in _THEME_LABELS.items():
            self.theme.addItem(label, name)
        self.close_to_tray = QCheckBox(
            "Closing the window keeps the workers running in the tray",
            group,
            objectName="settings_close_to_tray",
        )
        self.close_to_tray.setAccessibleName("Close to tray")
        self.operator = QLineEdit(group, objectName="settings_operator")
        self.operator.setAccessibleName("Operator name")
        self.operator.setPlaceholderText(os_user_name())
        self.operator.setToolTip(
            "Name recorded for approvals and in the audit trail; empty for the OS user"
        )

        form = QFormLayout(group)
        form.addRow("Keep records for", self.retention_days)
        form.addRow("Theme", self.theme)
        form.addRow(self.close_to_tray)
        form.addRow("Operator", self.operator)
        return group

    def _connect_fields(self) -> None:
        for button in (self.sqlite_radio, self.redis_radio):
            button.toggled.connect(self._on_form_changed)
        for edit in (
            self.sqlite_path,
            self.redis_url,
            self.redis_password,
            self.namespace,
            self.operator,
        ):
            edit.textChanged.connect(self._on_form_changed)
        self.redis_url.editingFinished.connect(self._on_redis_url_edited)
        for spin in (*self.worker_spins.values(), self.retention_days):
            # The spin box's own textChanged skips text it cannot interpret,
            # such as an empty field, which must disable OK.
            spin.lineEdit().textChanged.connect(self._on_form_changed)
        self.theme.currentIndexChanged.connect(self._on_form_changed)
        self.close_to_tray.toggled.connect(self._on_form_changed)

    # --- reading and writing the form -----------------------------------------

    def _show_config(self, config: Config) -> None:
        self._show_backend(config.backend)
        self.namespace.setText(config.namespace)
        for queue, spin in self.worker_spins.items():
            spin.setValue(config.workers.get(queue, 0))
        maximum = min(max(MAX_RETENTION_DAYS, config.retention_days), _SPIN_BOX_LIMIT)
        self.retention_days.setRange(1, maximum)
        self.retention_days.setValue(config.retention_days)
        self.theme.setCurrentIndex(max(0, self.theme.findData(config.theme)))
        self.close_to_tray.setChecked(config.close_to_tray)
        self.operator.setText(config.operator or "")

    def _show_backend(self, backend: str | None) -> None:
        text = (backend or "").strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in _REDIS_SCHEMES:
            url, password = split_password(text)
            self.redis_radio.setChecked(True)
            self.redis_url.setText(url)
            self.redis_password.setText(password)
        else:
            self.sqlite_radio.setChecked(True)
            if text:
                try:
                    spec = parse_backend(text)
                except ChenuError:
                    self.sqlite_path.setText(text)
                else:
                    self.sqlite_path.setText(str(spec.path) if spec.path else text)
        self._update_backend_fields()

    def _update_backend_fields(self) -> None:
        sqlite = self.sqlite_radio.isChecked()
        self.sqlite_path.setEnabled(sqlite)
        self.browse_button.setEnabled(sqlite)
        self.redis_url.setEnabled(not sqlite)
        self.redis_password.setEnabled(not sqlite)

    def _read_initial_values(self) -> dict[str, Any]:
        try:
            backend: Any = self._backend_value()
        except _FieldError:
            # load_config does not parse the backend, so it alone can be
            # invalid here; any valid input then counts as a change.
            backend = _UNREADABLE
        return {"backend": backend, **self._other_values()}

    def _form_values(self) -> dict[str, Any]:
        """Return the form's settings keyed by `Config` field name.

        Raises:
            _FieldError: A field is invalid; the first one in form order.
        """
        return {"backend": self._backend_value(), **self._other_values()}

    def _other_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        namespace = self.namespace.text().strip()
        try:
            config_from_mapping({"namespace": namespace}, "the settings")
        except ChenuError as exc:
            raise _FieldError(self.namespace, f"Namespace: {exc}") from None
        values["namespace"] = namespace

        workers: dict[TaskQueue, int] = {}
        for queue in TaskQueue:
            spin = self.worker_spins[queue]
            if not spin.hasAcceptableInput():
                raise _FieldError(
                    spin,
                    f"Workers of the {queue.value} queue: enter a whole number "
                    f"from 0 to {MAX_WORKERS_PER_QUEUE}",
                )
            workers[queue] = spin.value()
        values["workers"] = workers

        if not self.retention_days.hasAcceptableInput():
            raise _FieldError(
                self.retention_days,
                "Keep records for: enter a whole number of days, 1 or more",
            )
        values["retention_days"] = self.retention_days.value()
        values["theme"] = self.theme.currentData()
        values["close_to_tray"] = self.close_to_tray.isChecked()
        values["operator"] = self.operator.text().strip() or None
        return values

    def _backend_value(self) -> str | None:
        if self.sqlite_radio.isChecked():
            return self._sqlite_backend()
        return self._redis_backend()

    def _sqlite_backend(self) -> str | None:
        text = self.sqlite_path.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute():
            raise _FieldError(
                self.sqlite_path,
                f"SQLite file: {text!r} is a relative path; enter an absolute path "
                "or use Browse",
            )
        try:
            return parse_backend(text).url
        except ChenuError as exc:
            raise _FieldError(self.sqlite_path, f"SQLite file: {exc}") from None

    def _redis_backend(self) -> str:
        text = self.redis_url.text().strip()
        if not text:
            raise _FieldError(
                self.redis_url,
                f"Redis URL: missing; enter one such as {_REDIS_EXAMPLE}",
            )
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme not in _REDIS_SCHEMES:
            raise _FieldError(
                self.redis_url,
                f"Redis URL: {mask_url(text)!r} does not start with redis://, "
                f"rediss://, unix:// or redis+sentinel://; enter one such as "
                f"{_REDIS_EXAMPLE}",
            )
        bare, password_in_url = split_password(text)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query)
        # NOTE: the sentinels' password (?sentinel_password=) stays in the URL
        # field in plain text; only the master's goes to the Password field.
        if password_in_url or "password" in query:
            raise _FieldError(
                self.redis_url,
                "Redis URL: contains a password; remove it from the URL and enter "
                "it in the Password field",
            )
        url = join_password(bare, self.redis_password.text())
        try:
            parse_backend(url)
        except ChenuError as exc:
            raise _FieldError(self.redis_url, f"Redis URL: {exc}") from None
        return url

    def _changed_values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {
            name: value
            for name, value in values.items()
            if value != self._initial_values[name]
        }

    # --- slots ----------------------------------------------------------------

    def _on_form_changed(self) -> None:
        self._update_backend_fields()
        try:
            changed = self._changed_values(self._form_values())
            candidate = dataclasses.replace(self._config, **changed)
            config_from_mapping(config_to_mapping(candidate), "the settings")
        except _FieldError as error:
            self._show_invalid(error.widget, error.message)
            return
        except ChenuError as exc:
            self._show_invalid(None, str(exc))
            return
        self._show_invalid(None, "")
        self._show_restart_note(frozenset(changed))

    def _show_invalid(self, widget: QWidget | None, message: str) -> None:
        self.invalid_field = widget
        self.message.setText(message)
        self.ok_button.setEnabled(not message)

    def _show_restart_note(self, changed: frozenset[str]) -> None:
        pending = sorted(changed & RESTART_FIELDS)
        if pending:
            verb = "apply" if len(pending) > 1 else "applies"
            self.restart_note.setText(
                f"The new {' and '.join(pending)} {verb} after you restart "
                "CHE·NU Desktop; the other settings apply at once."
            )
        else:
            self.restart_note.setText(
                "Backend and namespace apply after a restart; workers, retention, "
                "theme, tray and operator apply at once."
            )

    def _on_redis_url_edited(self) -> None:
        bare, password = split_password(self.redis_url.text().strip())
        if password:
            self.redis_password.setText(password)
            self.redis_url.setText(bare)

    def _on_browse_clicked(self) -> None:
        current = self.sqlite_path.text().strip() or self.sqlite_path.placeholderText()
        current = current.removeprefix("default: ")
        dialog = QFileDialog(
            self,
            "Choose the SQLite file",
            current,
            "SQLite databases (*.db *.sqlite *.sqlite3);;All files (*)",
        )
        dialog.setObjectName("settings_sqlite_file_dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setOption(QFileDialog.Option.DontConfirmOverwrite)
        dialog.setDefaultSuffix("db")
        dialog.fileSelected.connect(self.sqlite_path.setText)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _on_ok_clicked(self) -> None:
        try:
            changed = self._changed_values(self._form_values())
        except _FieldError as error:
            self._show_invalid(error.widget, error.message)
            return
        config = dataclasses.replace(self._config, **changed)
        fields = frozenset(changed)
        if fields:
            try:
                written = save_config(config, self.path, keys=fields)
            except ChenuError as exc:
                self._show_invalid(None, str(exc))
                return
            except OSError as exc:
                logger.warning("saving the settings to %s failed: %s", self.path, exc)
                self._show_invalid(
                    None,
                    f"saving {self.path} failed: {exc.strerror or exc}; check that "
                    "you may write to its folder. Nothing was changed.",
                )
                return
        else:
            written = self.path
        self.change = SettingsChange(config, written, fields)
        if fields:
            logger.info(
                "settings saved to %s; changed: %s", written, ", ".join(sorted(fields))
            )
            if "backend" in fields:
                logger.info(
                    "backend set to %s from the next start",
                    mask_url(config.backend_url),
                )
            self.settings_saved.emit(self.change)
        self.accept()
