"""The main window: queue cards, tasks, schedules and workers over the live engine."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..models import RETRYABLE_STATUSES, WAITING_STATUSES, TaskRecord, TaskStatus
from .audit_view import AuditView
from .background import BackgroundRunner
from .feed import EngineFeed
from .queue_cards import QueueCardStrip
from .reason_dialog import ReasonDialog
from .schedules_view import SchedulesView
from .submit_dialog import SubmitTaskDialog
from .task_detail import TaskDetailPanel
from .task_table import TaskTableWidget
from .workers_view import WorkerPoolView

if TYPE_CHECKING:
    from ..engine import Engine

logger = logging.getLogger("chenu.ui")

#: Failed tasks "retry all failed" handles at most in one go.
MAX_BULK_RETRY = 10_000
#: Seconds the running tasks get to finish when the window stops the engine.
SHUTDOWN_TIMEOUT = 10.0
_INFO_TIMEOUT_MS = 6000
#: Size of the window at its first start; later starts restore the last one.
FIRST_SIZE = QSize(1500, 950)
#: Maximum share of the screen's free area that the first size takes.
SCREEN_SHARE = 0.9


class MessageBar(QFrame):
    """A dismissable line at the top of the window for results and errors."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("message_bar")
        self.label = QLabel(objectName="message_text", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Message")
        close = QToolButton(objectName="message_close", text="✕")
        close.setAccessibleName("Dismiss message")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self._timer = QTimer(self, singleShot=True, interval=_INFO_TIMEOUT_MS)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_error(self, text: str) -> None:
        self._timer.stop()
        self.setStyleSheet("#message_bar { background: #fed7d7; color: #742a2a; }")
        self.label.setText(text)
        self.show()

    def show_info(self, text: str) -> None:
        self.setStyleSheet("#message_bar { background: #e2e8f0; color: #1a202c; }")
        self.label.setText(text)
        self.show()
        self._timer.start()


class MainWindow(QMainWindow):
    """The operator's window over one engine.

    Storage calls run through a `BackgroundRunner`; the `EngineFeed` keeps
    every view current. Closing stops the engine off the GUI thread.

    Closing the window stops the engine, unless `keep_running_on_close` is
    set: then the window only hides and the workers go on (the tray icon
    brings it back); `quit_app` stops them in either case.

    Signals:
        shutdown_finished(): the engine has stopped after a close.
        hidden_on_close(): the window hid instead of stopping the engine.
    """

    shutdown_finished = Signal()
    hidden_on_close = Signal()

    def __init__(
        self,
        engine: Engine,
        settings: QSettings | None = None,
        feed_intervals: dict[str, int] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle("CHE·NU Desktop")
        self.engine = engine
        self.runner = BackgroundRunner(parent=self)
        self.feed = EngineFeed(
            engine, self.runner, parent=self, **(feed_intervals or {})
        )
        self._settings = settings or QSettings("chenu-desktop", "CHE·NU Desktop")
        self._selection: list[TaskRecord] = []
        self._shown_task: str | None = None
        self._stopping = False
        self._stopped = False
        self._quitting = False
        self.keep_running_on_close = False

        self._build_widgets()
        self._build_actions()
        self._connect()
        self._restore_state()
        self._update_actions()
        self.feed.start()

    # --- layout ----------------------------------------------------------------

    def _build_widgets(self) -> None:
        engine, runner = self.engine, self.runner
        self.cards = QueueCardStrip()
        self.banner = QLabel(objectName="backend_banner", wordWrap=True)
        self.banner.setAccessibleName("Backend status")
        self.banner.setStyleSheet(
            "#backend_banner { background: #c53030; color: white; padding: 6px; }"
        )
        self.banner.hide()
        self.messages = MessageBar()
        self.tasks = TaskTableWidget(engine, runner)
        self.detail = TaskDetailPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, objectName="task_splitter")
        self.splitter.addWidget(self.tasks)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        # The first start gives the detail panel room for a traceback.
        self.splitter.setSizes([900, 560])
        self.schedules = SchedulesView(engine, runner)
        self.schedules.set_operator(engine.config.operator_name)
        self.workers = WorkerPoolView(engine, runner)
        self.audit = AuditView(engine, runner)
        self.tabs = QTabWidget(objectName="main_tabs")
        self.tabs.addTab(self.splitter, "Tasks")
        self.tabs.addTab(self.schedules, "Schedules")
        self.tabs.addTab(self.workers, "Workers")
        self.tabs.addTab(self.audit, "Audit")

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.banner)
        layout.addWidget(self.messages)
        cards_area = QScrollArea(objectName="cards_area")
        cards_area.setWidget(self.cards)
        cards_area.setWidgetResizable(True)
        cards_area.setFrameShape(QFrame.Shape.NoFrame)
        cards_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        cards_area.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum
        )
        layout.addWidget(cards_area)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.backend_label = QLabel(objectName="backend_label")
        self.backend_label.setText(f"Backend: {engine.spec.display}")
        self.statusBar().addPermanentWidget(self.backend_label)
        self.resize(self._first_size())

    def _first_size(self) -> QSize:
        """Return `FIRST_SIZE`, bounded by `SCREEN_SHARE` of the screen's free area."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return FIRST_SIZE
        available = screen.availableGeometry().size()
        return FIRST_SIZE.boundedTo(available * SCREEN_SHARE)

    def _make_action(
        self,
        text: str,
        name: str,
        slot: Callable[[], None],
        shortcut: QKeySequence | str | None = None,
        icon: QStyle.StandardPixmap | None = None,
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setToolTip(f"{text} ({QKeySequence(shortcut).toString()})")
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        pixmap = QStyle.StandardPixmap
        self.submit_action = self._make_action(
            "Submit…",
            "action_submit",
            self.open_submit_dialog,
            "Ctrl+N",
            pixmap.SP_FileIcon,
        )
        self.cancel_action = self._make_action(
            "Cancel",
            "action_cancel",
            self.cancel_selected,
            "Del",
            pixmap.SP_BrowserStop,
        )
        self.retry_action = self._make_action(
            "Retry",
            "action_retry",
            self.retry_selected,
            "Ctrl+R",
            pixmap.SP_BrowserReload,
        )
        self.approve_action = self._make_action(
            "Approve…", "action_approve", self.approve_selected, "Ctrl+Shift+A",
            pixmap.SP_DialogApplyButton,
        )  # fmt: skip
        self.reject_action = self._make_action(
            "Reject…", "action_reject", self.reject_selected, "Ctrl+Shift+J",
            pixmap.SP_DialogCancelButton,
        )  # fmt: skip
        self.retry_failed_action = self._make_action(
            "Retry all failed…", "action_retry_all_failed", self.retry_all_failed
        )
        self.goto_action = self._make_action(
            "Go to task…", "action_goto", self.ask_go_to_task, "Ctrl+G"
        )
        self.refresh_action = self._make_action(
            "Refresh", "action_refresh", self.refresh, "F5"
        )
        self.find_action = self._make_action(
            "Find", "action_find", self._focus_search, QKeySequence.StandardKey.Find
        )
        toolbar = QToolBar("Actions", objectName="main_toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (
            self.submit_action,
            self.cancel_action,
            self.retry_action,
            self.approve_action,
            self.reject_action,
            self.retry_failed_action,
            self.goto_action,
            self.refresh_action,
        ):
            toolbar.addAction(action)
        self.addToolBar(toolbar)

    def _connect(self) -> None:
        feed = self.feed
        feed.changes_arrived.connect(self._on_feed_changes)
        feed.feed_reset.connect(self.refresh)
        feed.stats_updated.connect(self._on_feed_stats)
        feed.workers_updated.connect(self.workers.update_workers)
        feed.schedules_updated.connect(self.schedules.update_schedules)
        feed.audit_updated.connect(self.audit.notify_last_id)
        feed.backend_status_changed.connect(self._on_backend_status_changed)
        self.runner.failed.connect(self.messages.show_error)
        self.cards.queue_clicked.connect(self._on_cards_queue_clicked)
        self.tasks.selection_changed.connect(self._on_tasks_selection_changed)
        self.tasks.task_activated.connect(self.go_to_task)
        self.tasks.message_requested.connect(self.messages.show_error)
        self.detail.task_link_activated.connect(self.go_to_task)
        self.schedules.message_requested.connect(self.messages.show_info)
        self.workers.message_requested.connect(self.messages.show_error)
        self.audit.message_requested.connect(self.messages.show_error)

    # --- feed --------------------------------------------------------------------

    @Slot(list)
    def _on_feed_changes(self, changes: list[Any]) -> None:
        # The table re-reads changed rows and emits selection_changed with the
        # fresh records, which refreshes the detail panel.
        self.tasks.apply_changes(changes)

    @Slot(dict)
    def _on_feed_stats(self, stats: dict[Any, Any]) -> None:
        self.cards.update_stats(stats)
        self.workers.update_stats(stats)
        awaiting = sum(s.count(TaskStatus.AWAITING_APPROVAL) for s in stats.values())
        self.tasks.set_awaiting_count(awaiting)
        running = sum(s.running for s in stats.values())
        pending = sum(s.pending for s in stats.values())
        self.statusBar().showMessage(
            f"{running} running · {pending} pending · {awaiting} awaiting approval"
        )

    @Slot(bool, str)
    def _on_backend_status_changed(self, reachable: bool, message: str) -> None:
        if reachable:
            self.banner.hide()
            self.messages.show_info(f"Backend reachable again: {message}")
        else:
            self.banner.setText(
                f"The backend {self.engine.spec.display} is unreachable; the window "
                f"keeps what it showed and retries. ({message})"
            )
            self.banner.show()

    # --- selection and detail ----------------------------------------------------------

    @Slot(object)
    def _on_cards_queue_clicked(self, queue: Any) -> None:
        self.tabs.setCurrentWidget(self.splitter)
        self.tasks.set_queue_filter(queue)

    @Slot(list)
    def _on_tasks_selection_changed(self, records: list[TaskRecord]) -> None:
        self._selection = list(records)
        self._update_actions()
        if len(records) == 1:
            self._shown_task = records[0].task_id
            self.detail.show_record(records[0])
        elif not records:
            self._shown_task = None
            self.detail.show_record(None)

    def _load_detail(self, task_id: str) -> None:
        def show(record: TaskRecord) -> None:
            if record.task_id == self._shown_task:
                self.detail.show_record(record)
                self._selection = [
                    record if r.task_id == record.task_id else r
                    for r in self._selection
                ]
                self._update_actions()

        self.runner.run(self.engine.task_service.get_status, task_id, on_result=show,
                        on_error=self.messages.show_error)  # fmt: skip

    def _update_actions(self) -> None:
        records = self._selection
        self.cancel_action.setEnabled(any(self._can_cancel(r) for r in records))
        self.retry_action.setEnabled(any(self._can_retry(r) for r in records))
        awaiting = any(r.status is TaskStatus.AWAITING_APPROVAL for r in records)
        self.approve_action.setEnabled(awaiting)
        self.reject_action.setEnabled(awaiting)

    @staticmethod
    def _can_cancel(record: TaskRecord) -> bool:
        if record.status is TaskStatus.RUNNING:
            return not record.cancel_requested
        return record.status in WAITING_STATUSES

    @staticmethod
    def _can_retry(record: TaskRecord) -> bool:
        return record.status in RETRYABLE_STATUSES and not record.retried_as

    # --- actions -------------------------------------------------------------------------

    def _run_each(self, label: str, ids: list[str], call: Callable[[str], Any]) -> None:
        """Run `call` for each id in one background job and report the outcome."""
        if not ids:
            return

        def job() -> tuple[int, list[str]]:
            errors = []
            for task_id in ids:
                try:
                    call(task_id)
                except ValueError as exc:
                    errors.append(str(exc))
            return len(ids) - len(errors), errors

        def done(outcome: tuple[int, list[str]]) -> None:
            succeeded, errors = outcome
            if errors:
                extra = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
                self.messages.show_error(
                    f"{label}: {succeeded} of {len(ids)} done; {errors[0]}{extra}"
                )
            else:
                self.messages.show_info(f"{label}: {succeeded} of {len(ids)} done")
            self.feed.poll_changes()
            if self._shown_task:
                self._load_detail(self._shown_task)

        self.runner.run(job, on_result=done, on_error=self.messages.show_error)

    def cancel_selected(self) -> None:
        ids = [r.task_id for r in self._selection if self._can_cancel(r)]
        self._run_each("Cancel", ids, self.engine.task_service.cancel)

    def retry_selected(self) -> None:
        ids = [r.task_id for r in self._selection if self._can_retry(r)]
        self._run_each("Retry", ids, self.engine.task_service.retry)

    def _ask_reason(self, title: str, prompt: str, required: bool) -> str | None:
        dialog = ReasonDialog(title, prompt, required, self)
        if dialog.exec() != ReasonDialog.DialogCode.Accepted:
            return None
        return dialog.reason

    def approve_selected(self) -> None:
        ids = [
            r.task_id
            for r in self._selection
            if r.status is TaskStatus.AWAITING_APPROVAL
        ]
        if not ids:
            return
        reason = self._ask_reason(
            "Approve", f"Approve {len(ids)} task(s) as {self.engine.config.operator_name}?",
            required=False,
        )  # fmt: skip
        if reason is None:
            return
        approver = self.engine.config.operator_name
        self._run_each(
            "Approve", ids,
            lambda task_id: self.engine.task_service.approve(task_id, approver, reason or None),
        )  # fmt: skip

    def reject_selected(self) -> None:
        ids = [
            r.task_id
            for r in self._selection
            if r.status is TaskStatus.AWAITING_APPROVAL
        ]
        if not ids:
            return
        reason = self._ask_reason(
            "Reject", f"Reject {len(ids)} task(s)? The reason is stored with each.",
            required=True,
        )  # fmt: skip
        if not reason:
            return
        approver = self.engine.config.operator_name
        self._run_each(
            "Reject", ids,
            lambda task_id: self.engine.task_service.reject(task_id, approver, reason),
        )  # fmt: skip

    def retry_all_failed(self) -> None:
        """Count the failed tasks not retried yet, confirm, then retry them."""

        def collect() -> list[str]:
            ids: list[str] = []
            offset = 0
            while len(ids) < MAX_BULK_RETRY:
                page = self.engine.task_service.list_tasks(
                    status=TaskStatus.FAILURE, limit=1000, offset=offset
                )
                ids.extend(r.task_id for r in page if not r.retried_as)
                offset += len(page)
                if len(page) < 1000:
                    break
            return ids[:MAX_BULK_RETRY]

        def confirm(ids: list[str]) -> None:
            if not ids:
                self.messages.show_info("No failed tasks to retry")
                return
            answer = self.confirm(
                "Retry all failed",
                f"Retry {len(ids)} failed task(s)? Each gets a new task with the same "
                "arguments.",
            )
            if answer:
                self._run_each("Retry all failed", ids, self.engine.task_service.retry)

        self.runner.run(collect, on_result=confirm, on_error=self.messages.show_error)

    def confirm(self, title: str, text: str) -> bool:
        """Ask a yes/no question; tests replace this method."""
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def open_submit_dialog(self) -> SubmitTaskDialog:
        dialog = SubmitTaskDialog(self.engine, self.runner, self)
        dialog.task_submitted.connect(self._on_task_submitted)
        dialog.open()
        return dialog

    @Slot(str)
    def _on_task_submitted(self, task_id: str) -> None:
        self.messages.show_info(f"Submitted task {task_id}")
        self.feed.poll_changes()

    def ask_go_to_task(self) -> None:
        task_id, ok = QInputDialog.getText(self, "Go to task", "Task id:")
        if ok and task_id.strip():
            self.go_to_task(task_id.strip())

    @Slot(str)
    def go_to_task(self, task_id: str) -> None:
        self.tabs.setCurrentWidget(self.splitter)
        self.tasks.select_task(task_id)

    def refresh(self) -> None:
        self.tasks.reload()
        self.audit.refresh()
        self.feed.refresh_all()

    def _focus_search(self) -> None:
        self.tabs.setCurrentWidget(self.splitter)
        search = self.tasks.findChild(QWidget, "task_search")
        if search is not None:
            search.setFocus()

    # --- state and shutdown ----------------------------------------------------------------

    def _restore_state(self) -> None:
        settings = self._settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        splitter = settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        header = settings.value("tasks/header")
        if isinstance(header, QByteArray):
            self.tasks.restore_header_state(header)
        tab = settings.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))

    def save_state(self) -> None:
        settings = self._settings
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self.splitter.saveState())
        settings.setValue("tasks/header", self.tasks.header_state())
        settings.setValue("window/tab", self.tabs.currentIndex())
        settings.sync()

    def quit_app(self) -> None:
        """Stop the engine and close, even when closing would only hide."""
        self._quitting = True
        if self.isHidden():
            self.showNormal()
        self.close()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._stopped:
            event.accept()
            return
        event.ignore()
        if self._stopping:
            return
        if self.keep_running_on_close and not self._quitting:
            self.save_state()
            self.hide()
            self.hidden_on_close.emit()
            return
        self._stopping = True
        self.save_state()
        self.feed.stop()
        self.setEnabled(False)
        text = (
            "Stopping the workers: running tasks get up to "
            f"{SHUTDOWN_TIMEOUT:g} s to finish…"
        )
        self.banner.setStyleSheet(
            "#backend_banner { background: #2b6cb0; color: white; padding: 6px; }"
        )
        self.banner.setText(text)
        self.banner.show()
        self.statusBar().showMessage(text)
        done = threading.Event()

        def stop_engine() -> None:
            try:
                # Reads still in flight use the ledger's connections, which
                # engine.close closes: let them end first.
                self.runner.close(wait=True)
                if not self.engine.close(SHUTDOWN_TIMEOUT):
                    logger.warning(
                        "some workers were still running after %g s; their tasks "
                        "are settled at the next start",
                        SHUTDOWN_TIMEOUT,
                    )
            finally:
                done.set()

        threading.Thread(
            target=stop_engine, name="chenu-ui-shutdown", daemon=True
        ).start()
        timer = QTimer(self, interval=50)

        def check() -> None:
            if done.is_set():
                timer.stop()
                self._stopped = True
                self.runner.close(wait=False)
                self.shutdown_finished.emit()
                self.close()

        timer.timeout.connect(check)
        timer.start()
