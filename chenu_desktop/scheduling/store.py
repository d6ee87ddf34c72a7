"""Storage of cron schedules, their history, fire claims and the scheduler lease."""

from __future__ import annotations

import abc
import dataclasses
import json
from typing import Any

#: Misfire policies: record missed fires and run nothing, or run one catch-up.
MISFIRE_SKIP = "skip"
MISFIRE_RUN_ONCE = "run_once"
MISFIRE_POLICIES = (MISFIRE_SKIP, MISFIRE_RUN_ONCE)

#: Kinds of history events.
EVENT_FIRED = "fired"
EVENT_MISSED = "missed"
EVENT_CATCH_UP = "catch_up"
EVENT_RUN_NOW = "run_now"
EVENT_FAILED = "failed"


@dataclasses.dataclass
class ScheduleRecord:
    """A stored schedule. Times are POSIX seconds (UTC).

    ``anchor`` is the instant the next fire is computed from: the creation,
    the last edit or enable, or the last fire handled, whichever is latest.
    """

    name: str
    task_name: str
    expression: str
    timezone: str
    enabled: bool = True
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    misfire: str = MISFIRE_SKIP
    grace_seconds: float = 3600.0
    created_at: float = 0.0
    updated_at: float = 0.0
    anchor: float = 0.0
    last_run: float | None = None
    last_task_id: str | None = None
    approved_by: str | None = None
    approved_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ScheduleRecord:
        return cls(**json.loads(text))


@dataclasses.dataclass
class ScheduleEvent:
    """One entry in a schedule's history."""

    schedule: str
    kind: str
    fire_at: float | None
    at: float
    task_id: str | None = None
    detail: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ScheduleEvent:
        return cls(**json.loads(text))


class ScheduleStore(abc.ABC):
    """Schedules shared by every process on one backend."""

    @abc.abstractmethod
    def add(self, record: ScheduleRecord) -> bool:
        """Store a new schedule; return False if the name is taken."""

    @abc.abstractmethod
    def get(self, name: str) -> ScheduleRecord | None: ...

    @abc.abstractmethod
    def list(self) -> list[ScheduleRecord]:
        """Return every schedule, by name."""

    @abc.abstractmethod
    def put(self, record: ScheduleRecord) -> bool:
        """Replace an existing schedule; return False if it does not exist."""

    @abc.abstractmethod
    def remove(self, name: str) -> bool:
        """Delete a schedule and its history; return False if it did not exist."""

    @abc.abstractmethod
    def claim_fire(self, name: str, fire_at: float) -> bool:
        """Atomically claim one fire; True only for the first caller, ever."""

    @abc.abstractmethod
    def add_event(self, event: ScheduleEvent) -> None: ...

    @abc.abstractmethod
    def history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        """Return the schedule's newest events first."""

    @abc.abstractmethod
    def acquire_lease(self, holder: str, ttl: float, now: float) -> bool:
        """Take or renew the scheduler lease; True if `holder` holds it now."""

    @abc.abstractmethod
    def release_lease(self, holder: str) -> None: ...

    @abc.abstractmethod
    def version(self) -> int:
        """Return a number that grows with every add, edit and removal."""

    @abc.abstractmethod
    def mark_seeded(self, key: str) -> bool:
        """Record that a one-time setup ran; True only the first time."""

    @abc.abstractmethod
    def close(self) -> None: ...
