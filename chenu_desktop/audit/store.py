"""Audit entries, the filter that selects them and the storage interface."""

from __future__ import annotations

import abc
import dataclasses
import enum
import json
from typing import Any


class AuditAction(enum.StrEnum):
    """The operator actions the trail records."""

    SUBMIT = "submit"
    CANCEL = "cancel"
    RETRY = "retry"
    APPROVE = "approve"
    REJECT = "reject"
    CLEANUP = "cleanup"
    SCHEDULE_ADD = "schedule_add"
    SCHEDULE_UPDATE = "schedule_update"
    SCHEDULE_REMOVE = "schedule_remove"
    SCHEDULE_ENABLE = "schedule_enable"
    SCHEDULE_DISABLE = "schedule_disable"
    SCHEDULE_RUN_NOW = "schedule_run_now"
    POOL_RESIZE = "pool_resize"
    QUEUE_PAUSE = "queue_pause"
    QUEUE_RESUME = "queue_resume"


#: Kinds of target: a task id, a schedule name, a queue name, or the ledger itself.
TARGET_TASK = "task"
TARGET_SCHEDULE = "schedule"
TARGET_QUEUE = "queue"
TARGET_LEDGER = "ledger"


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One recorded operator action.

    Attributes:
        entry_id: Position in the trail, from 1; 0 until the store assigns it.
        at: When the action took effect, in POSIX seconds.
        operator: The configured operator name of the process that acted.
        action: An `AuditAction` value.
        target_kind: ``task``, ``schedule``, ``queue`` or ``ledger``.
        target: The task id, schedule name or queue name acted on.
        reason: The reason the operator gave (approve and reject), else None.
        details: Outcome figures, such as the new id of a retry or the
            number of records a cleanup deleted; JSON values only.
    """

    entry_id: int
    at: float
    operator: str
    action: str
    target_kind: str
    target: str
    reason: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEntry:
        return cls(**json.loads(text))


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    """Conditions an entry must all meet; None matches anything.

    `target` and `operator` match exactly; `since` keeps entries at or after
    that POSIX time.
    """

    action: str | None = None
    target: str | None = None
    operator: str | None = None
    since: float | None = None

    def matches(self, entry: AuditEntry) -> bool:
        return (
            (self.action is None or entry.action == self.action)
            and (self.target is None or entry.target == self.target)
            and (self.operator is None or entry.operator == self.operator)
            and (self.since is None or entry.at >= self.since)
        )


class AuditStore(abc.ABC):
    """Append-only storage of audit entries, shared by every process on a backend.

    There is no method that changes or deletes an entry.
    """

    @abc.abstractmethod
    def append(self, entry: AuditEntry) -> AuditEntry:
        """Store `entry` after the newest one; return it with its `entry_id`."""

    @abc.abstractmethod
    def list_entries(
        self, entry_filter: AuditFilter, limit: int, offset: int = 0
    ) -> list[AuditEntry]:
        """Return one page of matching entries, newest first."""

    @abc.abstractmethod
    def count_entries(self, entry_filter: AuditFilter) -> int: ...

    @abc.abstractmethod
    def last_id(self) -> int:
        """Return the `entry_id` of the newest entry, 0 when there is none."""

    @abc.abstractmethod
    def close(self) -> None: ...
