"""The desktop side of the main window: menus, tray, notifications, errors.

`DesktopShell` adds to a `MainWindow` the File and Help menus, the tray icon
with its menu and tooltip, desktop notifications from `TaskNotifier`, the
About box, and the dialog for unexpected errors. It owns no storage access of
its own: it reads through the window's `BackgroundRunner` and feed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from ..config import default_config_path
from ..models import TaskQueue, TaskStatus
from .about import AboutDialog
from .crash import MAX_DIALOGS, CrashDialog, CrashReporter
from .icons import app_icon
from .notifier import Notice, TaskNotifier
from .settings_dialog import SettingsChange, SettingsDialog
from .theme import apply_theme

if TYPE_CHECKING:
    from .main_window import MainWindow

logger = logging.getLogger("chenu.ui")

#: Milliseconds a tray notification stays up.
NOTICE_MS = 8000


class DesktopShell(QObject):
    """Menus, tray icon, notifications and error dialogs around one window.

    With `close_to_tray`, closing the window hides it and the workers keep
    running. It takes effect only where the desktop has a system tray.
    """

    def __init__(
        self,
        window: MainWindow,
        log_dir: Path,
        close_to_tray: bool = False,
        tray: bool | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.log_dir = log_dir
        self.notices: list[Notice] = []
        self._dialogs = 0
        window.setWindowIcon(app_icon())
        self._build_menus()
        if tray is None:
            tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray: QSystemTrayIcon | None = self._build_tray() if tray else None
        self.set_close_to_tray(close_to_tray)
        self.notifier = TaskNotifier(
            window.engine.task_service.get_status, window.runner, parent=self
        )
        window.feed.changes_arrived.connect(self.notifier.handle_changes)
        window.feed.stats_updated.connect(self._on_stats)
        self.notifier.notice.connect(self.show_notice)
        window.hidden_on_close.connect(self._on_hidden)
        self.crash_reporter = CrashReporter(log_dir, parent=self)
        self.crash_reporter.crashed.connect(self.show_crash)
        self._tray_hint_shown = False

    # --- menus -------------------------------------------------------------

    def _action(self, text: str, name: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        window = self.window
        bar = window.menuBar()
        bar.setObjectName("menu_bar")
        file_menu = bar.addMenu("&File")
        file_menu.setObjectName("menu_file")
        file_menu.addAction(window.submit_action)
        file_menu.addAction(window.goto_action)
        file_menu.addSeparator()
        self.settings_action = self._action(
            "&Settings…", "action_settings", self.open_settings, "Ctrl+,"
        )
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        self.close_action = self._action(
            "&Close window", "action_close_window", window.close, "Ctrl+W"
        )
        self.quit_action = self._action(
            "&Quit", "action_quit", window.quit_app, "Ctrl+Q"
        )
        file_menu.addAction(self.close_action)
        file_menu.addAction(self.quit_action)
        help_menu = bar.addMenu("&Help")
        help_menu.setObjectName("menu_help")
        self.log_folder_action = self._action(
            "Open &log folder", "action_open_log_folder", self.open_log_folder
        )
        self.about_action = self._action(
            "&About CHE·NU Desktop", "action_about", self.show_about
        )
        help_menu.addAction(self.log_folder_action)
        help_menu.addAction(self.about_action)
        self.file_menu = file_menu
        self.help_menu = help_menu

    @Slot()
    def open_log_folder(self) -> bool:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_dir)))
        if not opened:
            self.window.messages.show_info(f"The log folder is {self.log_dir}")
        return opened

    @Slot()
    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.window.engine, self.window.runner, self.window)
        dialog.setModal(False)
        dialog.show()
        return dialog

    # --- settings ------------------------------------------------------------

    @Slot()
    def open_settings(self) -> SettingsDialog:
        """Open the Settings dialog on the settings in force."""
        config = self.window.engine.config
        dialog = SettingsDialog(
            config, config.source or default_config_path(), self.window
        )
        dialog.settings_saved.connect(self.apply_settings)
        dialog.open()
        return dialog

    @Slot(object)
    def apply_settings(self, change: SettingsChange) -> None:
        """Apply the changes that take effect at once, and name those that need a restart."""
        window = self.window
        engine = window.engine
        engine.config = change.merged_into(engine.config)
        live = change.live_fields
        if "theme" in live:
            apply_theme(QApplication.instance(), change.config.theme)
        if "operator" in live:
            window.schedules.set_operator(engine.config.operator_name)
        if "close_to_tray" in live:
            self.set_close_to_tray(change.config.close_to_tray)
        if "workers" in live:
            counts = dict(change.config.workers)

            def resize() -> None:
                sizes = engine.pool.sizes()
                for queue in TaskQueue:
                    if sizes[queue] != counts[queue]:
                        engine.pool.resize(queue, counts[queue])

            window.runner.run(resize)
        saved = f"Settings saved to {change.path}."
        if change.restart_fields:
            names = ", ".join(sorted(change.restart_fields))
            window.messages.show_info(
                f"{saved} The new {names} takes effect when you restart the app; "
                "until then the window stays on its current backend."
            )
        else:
            window.messages.show_info(f"{saved} The changes apply now.")

    # --- tray ----------------------------------------------------------------

    def _build_tray(self) -> QSystemTrayIcon:
        tray = QSystemTrayIcon(app_icon(), self)
        tray.setObjectName("tray_icon")
        tray.setToolTip("CHE·NU Desktop")
        menu = QMenu(self.window)
        menu.setObjectName("tray_menu")
        self.show_action = self._action(
            "Show CHE·NU Desktop", "action_show_window", self.show_window
        )
        menu.addAction(self.show_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        tray.setContextMenu(menu)
        tray.activated.connect(self._on_tray_activated)
        tray.messageClicked.connect(self.show_window)
        tray.show()
        return tray

    def set_close_to_tray(self, enabled: bool) -> None:
        """Hide on close with the workers running, where a tray exists."""
        if enabled and self.tray is None:
            logger.warning(
                "close_to_tray is set but this desktop has no system tray: closing "
                "the window stops the workers"
            )
        self.window.keep_running_on_close = bool(enabled and self.tray is not None)

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason is QSystemTrayIcon.ActivationReason.Trigger:
            if self.window.isVisible() and not self.window.isMinimized():
                self.window.hide()
            else:
                self.show_window()

    @Slot()
    def show_window(self) -> None:
        window = self.window
        window.showNormal()
        window.raise_()
        window.activateWindow()

    @Slot()
    def _on_hidden(self) -> None:
        if self.tray is not None and not self._tray_hint_shown:
            self._tray_hint_shown = True
            self.tray.showMessage(
                "CHE·NU Desktop keeps running",
                "The workers go on in the tray. Quit from the tray menu to stop them.",
                QSystemTrayIcon.MessageIcon.Information,
                NOTICE_MS,
            )

    @Slot(dict)
    def _on_stats(self, stats: dict[Any, Any]) -> None:
        if self.tray is None:
            return
        running = sum(s.running for s in stats.values())
        pending = sum(s.pending for s in stats.values())
        awaiting = sum(s.count(TaskStatus.AWAITING_APPROVAL) for s in stats.values())
        self.tray.setToolTip(
            f"CHE·NU Desktop: {running} running, {pending} pending, "
            f"{awaiting} awaiting approval"
        )

    # --- notifications and errors ----------------------------------------------

    @Slot(object)
    def show_notice(self, notice: Notice) -> None:
        """Show a notification in the tray, or in the window without a tray."""
        self.notices.append(notice)
        del self.notices[:-50]
        logger.info(
            "notification: %s: %s", notice.title, notice.text.replace("\n", "; ")
        )
        if self.tray is not None:
            icon = (
                QSystemTrayIcon.MessageIcon.Warning
                if notice.is_warning
                else QSystemTrayIcon.MessageIcon.Information
            )
            self.tray.showMessage(notice.title, notice.text, icon, NOTICE_MS)
        elif notice.is_warning:
            self.window.messages.show_error(f"{notice.title}: {notice.text}")
        else:
            self.window.messages.show_info(f"{notice.title}: {notice.text}")

    @Slot(str, str)
    def show_crash(self, text: str, path: str) -> CrashDialog | None:
        """Show the traceback of an unexpected error, a few times at most."""
        if self._dialogs >= MAX_DIALOGS:
            where = f"; saved to {path}" if path else ""
            self.window.messages.show_error(f"Another unexpected error{where}")
            return None
        self._dialogs += 1
        dialog = CrashDialog(text, path, self.window)
        dialog.finished.connect(self._on_crash_dialog_closed)
        dialog.show()
        return dialog

    @Slot()
    def _on_crash_dialog_closed(self) -> None:
        self._dialogs = max(0, self._dialogs - 1)

    def install_crash_reporter(self) -> None:
        self.crash_reporter.install()

    def close(self) -> None:
        self.crash_reporter.uninstall()
        if self.tray is not None:
            self.tray.hide()
