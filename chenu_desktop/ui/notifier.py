"""Desktop notifications: what an operator must hear about while looking elsewhere.

`TaskNotifier` watches the change feed for three events: a task failed after
its last attempt, a governance task awaits approval, and a task was lost with
its worker. A burst of one kind becomes one notification that counts them, so
a hundred failures give one message, not a hundred. Names and errors are read
through the `BackgroundRunner`, never on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from ..models import Change, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from .background import BackgroundRunner

#: Records read to name the tasks of one notification.
NAMED_TASKS = 3
#: Characters of a task's error that a notification shows; the detail has it all.
ERROR_CHARS = 200
#: Milliseconds that events of one kind are gathered into one notification.
DEFAULT_GATHER_MS = 1500


class NoticeKind(enum.Enum):
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"
    LOST = "lost"


_KIND_OF_STATUS = {
    TaskStatus.FAILURE: NoticeKind.FAILED,
    TaskStatus.AWAITING_APPROVAL: NoticeKind.AWAITING_APPROVAL,
    TaskStatus.LOST: NoticeKind.LOST,
}


@dataclasses.dataclass(frozen=True)
class Notice:
    """One notification: its kind, title and text, and the tasks it is about."""

    kind: NoticeKind
    title: str
    text: str
    task_ids: tuple[str, ...]

    @property
    def is_warning(self) -> bool:
        return self.kind is not NoticeKind.AWAITING_APPROVAL


def _describe(record: TaskRecord) -> str:
    line = f"{record.task_name} ({record.task_id})"
    error = (record.error or "").strip()
    if record.status is TaskStatus.FAILURE and error:
        last = error.splitlines()[-1]
        if len(last) > ERROR_CHARS:
            last = last[: ERROR_CHARS - 1] + "…"
        line += f": {last}"
    return line


def compose(kind: NoticeKind, task_ids: list[str], records: list[TaskRecord]) -> Notice:
    """Return the notification for `task_ids`, naming the tasks in `records`."""
    count = len(task_ids)
    if kind is NoticeKind.FAILED:
        title = (
            "Task failed after its last attempt"
            if count == 1
            else f"{count} tasks failed after their last attempt"
        )
    elif kind is NoticeKind.AWAITING_APPROVAL:
        title = (
            "A governance task awaits approval"
            if count == 1
            else f"{count} governance tasks await approval"
        )
    else:
        title = (
            "A task was lost with its worker"
            if count == 1
            else f"{count} tasks were lost with their workers"
        )
    lines = [_describe(record) for record in records]
    if not lines:
        lines = list(task_ids[:NAMED_TASKS])
    if count > len(lines):
        lines.append(f"and {count - len(lines)} more")
    if kind is NoticeKind.LOST:
        what = "it" if count == 1 else "them"
        lines.append(f"Retry {what} from the window once the cause is fixed.")
    return Notice(kind, title, "\n".join(lines), tuple(task_ids))


class TaskNotifier(QObject):
    """Turn feed changes into notifications.

    Connect `handle_changes` to `EngineFeed.changes_arrived`; `notice` is
    emitted on the GUI thread.

    Signals:
        notice(Notice): a notification to show.
    """

    notice = Signal(object)

    def __init__(
        self,
        read_record: Callable[[str], TaskRecord],
        runner: BackgroundRunner,
        gather_ms: int = DEFAULT_GATHER_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._read_record = read_record
        self._runner = runner
        self._pending: dict[NoticeKind, list[str]] = {}
        self._timer = QTimer(self, singleShot=True, interval=gather_ms)
        self._timer.timeout.connect(self.flush)

    @Slot(list)
    def handle_changes(self, changes: list[Change]) -> None:
        for change in changes:
            kind = _KIND_OF_STATUS.get(change.status)
            if kind is None or change.deleted:
                continue
            ids = self._pending.setdefault(kind, [])
            if change.task_id not in ids:
                ids.append(change.task_id)
        if self._pending and not self._timer.isActive():
            self._timer.start()

    @Slot()
    def flush(self) -> None:
        """Emit the gathered notifications now, one per kind."""
        self._timer.stop()
        pending, self._pending = self._pending, {}
        for kind, ids in pending.items():
            self._announce(kind, ids)

    def _announce(self, kind: NoticeKind, ids: list[str]) -> None:
        read = self._read_record

        def names() -> list[TaskRecord]:
            records = []
            for task_id in ids[:NAMED_TASKS]:
                try:
                    records.append(read(task_id))
                except Exception:
                    # A record removed since: the notice names the id alone.
                    continue
            return records

        def emit(records: Any) -> None:
            self.notice.emit(compose(kind, ids, records))

        # A backend error leaves the notice with ids only, never without it.
        self._runner.run(names, on_result=emit, on_error=lambda _: emit([]))
