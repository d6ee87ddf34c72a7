"""The scheduler service: cron schedules that operators edit while it runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import threading
import uuid
import zoneinfo
from typing import TYPE_CHECKING, Any

from .. import cron
from ..audit.store import TARGET_SCHEDULE, AuditAction
from ..errors import ChenuError, InvalidArgumentError
from ..models import TaskQueue, TaskStatus
from ..services import check_text, wrap_backend_errors
from .store import (
    EVENT_CATCH_UP,
    EVENT_FAILED,
    EVENT_FIRED,
    EVENT_MISSED,
    EVENT_RUN_NOW,
    MISFIRE_POLICIES,
    MISFIRE_RUN_ONCE,
    MISFIRE_SKIP,
    ScheduleEvent,
    ScheduleRecord,
    ScheduleStore,
)

if TYPE_CHECKING:
    from ..engine import Engine

logger = logging.getLogger("chenu.scheduler")

#: A fire handled more than this many seconds after its instant counts as missed.
LATE_TOLERANCE = 60.0
#: Seconds the scheduler lease lasts without renewal.
LEASE_TTL = 15.0
#: Maximum wait of the scheduler thread between two passes, in seconds.
MAX_WAIT = 1.0
#: Missed fires listed per schedule and pass at most.
MAX_MISSES = 1000

#: Schedules that exist on first start; operators may edit or remove them.
DEFAULT_SCHEDULES: tuple[dict[str, Any], ...] = (
    {
        "name": "daily_cleanup",
        "task_name": "cleanup_old_data",
        "schedule": "0 2 * * *",
        "task_kwargs": {"days": 30},
    },
    {
        "name": "hourly_analytics",
        "task_name": "aggregate_analytics",
        "schedule": "0 * * * *",
        "task_kwargs": {"period": "hourly"},
    },
)


class ScheduleNotFoundError(ChenuError):
    """No schedule has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"schedule {name!r} not found: check the name with "
            "`chenu-desktop schedules list`"
        )
        self.name = name


@dataclasses.dataclass
class ScheduleInfo:
    """A schedule as operators see it; times are aware, in the schedule's zone."""

    name: str
    task_name: str
    expression: str
    description: str
    timezone: str
    enabled: bool
    next_run: dt.datetime | None
    last_run: dt.datetime | None
    last_status: TaskStatus | None
    last_task_id: str | None
    misfire: str
    grace_seconds: float
    kwargs: dict[str, Any]
    approved_by: str | None
    approved_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("next_run", "last_run", "approved_at"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value is not None else None
        data["last_status"] = self.last_status.value if self.last_status else None
        return data


def _aware(timestamp: float | None, zone: str) -> dt.datetime | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, zoneinfo.ZoneInfo(zone))


def _instant(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


#: Fields of a schedule whose edits the audit trail lists, old and new value.
_AUDITED_FIELDS = (
    "task_name",
    "expression",
    "timezone",
    "kwargs",
    "misfire",
    "grace_seconds",
    "approved_by",
)


def _changed_fields(
    before: ScheduleRecord, after: ScheduleRecord
) -> dict[str, list[Any]]:
    """Return ``{field: [old, new]}`` for each audited field the edit changed."""
    return {
        name: [getattr(before, name), getattr(after, name)]
        for name in _AUDITED_FIELDS
        if getattr(before, name) != getattr(after, name)
    }


@wrap_backend_errors
class SchedulerService:
    """Add, edit and run cron schedules; fire them on the ``scheduled`` queue.

    One process per backend fires at a time, the holder of a renewed lease,
    and every fire instant is claimed atomically before its task is
    submitted, so no fire runs twice even when leases overlap.
    """

    def __init__(self, engine: Engine, store: ScheduleStore) -> None:
        self._engine = engine
        self._store = store
        self.backend_display = engine.spec.display
        self.holder = f"{engine.pool.host}-{engine.pool.pid}-{uuid.uuid4().hex[:6]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self.is_leader = False

    # --- validation and preview ------------------------------------------

    def validate(
        self, expression: str, timezone: str | None = None
    ) -> cron.CronSchedule:
        """Return the parsed schedule, or raise InvalidScheduleError naming the field."""
        return cron.validate(expression, timezone)

    def preview(
        self,
        expression: str,
        timezone: str | None = None,
        count: int = 5,
        after: dt.datetime | None = None,
    ) -> list[dt.datetime]:
        """Return the next `count` fires, aware in the zone, strictly after `after`."""
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 1 <= count <= 1000
        ):
            raise InvalidArgumentError(f"invalid count {count!r}: pass 1 to 1000")
        schedule = cron.validate(expression, timezone)
        start = after if after is not None else _instant(self._engine.clock())
        if start.tzinfo is None:
            raise InvalidArgumentError(
                f"invalid after {start!r}: pass an aware datetime (with a time zone)"
            )
        return cron.next_fires(schedule, start, count)

    def describe(self, expression: str) -> str:
        return cron.describe(cron.validate(expression, "UTC"))

    # --- editing -----------------------------------------------------------

    def add_schedule(
        self,
        name: str,
        task_name: str,
        schedule: str,
        *,
        timezone: str | None = None,
        misfire: str = MISFIRE_SKIP,
        grace_seconds: float = 3600.0,
        enabled: bool = True,
        approved_by: str | None = None,
        task_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> ScheduleInfo:
        """Store a new schedule; other keywords are the task's arguments.

        Raises:
            InvalidScheduleError: The expression or the zone is invalid.
            InvalidArgumentError: The name is taken, or an argument is invalid.
            UnknownTaskError: No task has that name.
        """
        record = self._add(
            name,
            task_name,
            schedule,
            timezone=timezone,
            misfire=misfire,
            grace_seconds=grace_seconds,
            enabled=enabled,
            approved_by=approved_by,
            task_kwargs=task_kwargs,
            **kwargs,
        )
        info = self._info(record)
        self._record(
            AuditAction.SCHEDULE_ADD,
            record,
            info,
            {
                "task_name": record.task_name,
                "expression": record.expression,
                "timezone": record.timezone,
                "enabled": record.enabled,
                "kwargs": record.kwargs,
                "approved_by": record.approved_by,
            },
        )
        return info

    def _add(
        self,
        name: str,
        task_name: str,
        schedule: str,
        *,
        timezone: str | None,
        misfire: str,
        grace_seconds: float,
        enabled: bool,
        approved_by: str | None,
        task_kwargs: dict[str, Any] | None,
        **kwargs: Any,
    ) -> ScheduleRecord:
        """Check and store a new schedule without an audit entry; see `add_schedule`."""
        name = self._check_name(name)
        parsed = cron.validate(schedule, timezone)
        arguments = self._check_task(task_name, task_kwargs, kwargs)
        self._check_misfire(misfire, grace_seconds)
        definition = self._engine.registry.get(task_name)
        now = self._engine.clock()
        approver = self._check_approval(
            definition.requires_governance, approved_by, name
        )
        record = ScheduleRecord(
            name=name,
            task_name=task_name,
            expression=parsed.expression,
            timezone=parsed.timezone,
            enabled=bool(enabled),
            kwargs=arguments,
            misfire=misfire,
            grace_seconds=float(grace_seconds),
            created_at=now,
            updated_at=now,
            anchor=now,
            approved_by=approver,
            approved_at=now if approver else None,
        )
        if not self._store.add(record):
            raise InvalidArgumentError(
                f"schedule {name!r} exists already: choose another name or update it"
            )
        logger.info("schedule %s added: %s runs %s", name, parsed.expression, task_name)
        self._wake.set()
        return record

    def update_schedule(
        self,
        name: str,
        *,
        schedule: str | None = None,
        timezone: str | None = None,
        task_name: str | None = None,
        misfire: str | None = None,
        grace_seconds: float | None = None,
        approved_by: str | None = None,
        task_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> ScheduleInfo:
        """Change a schedule at once; the next run is computed from now.

        `task_kwargs` replaces the task's arguments; other keywords change
        single arguments and keep the rest.
        """
        record = self._get(name)
        before = dataclasses.replace(record)
        parsed = cron.validate(
            schedule if schedule is not None else record.expression,
            timezone if timezone is not None else record.timezone,
        )
        new_task = task_name if task_name is not None else record.task_name
        base = dict(task_kwargs) if task_kwargs is not None else dict(record.kwargs)
        if (
            task_name is not None
            and task_kwargs is None
            and new_task != record.task_name
        ):
            base = {}
        arguments = self._check_task(new_task, base, kwargs)
        new_misfire = misfire if misfire is not None else record.misfire
        new_grace = grace_seconds if grace_seconds is not None else record.grace_seconds
        self._check_misfire(new_misfire, new_grace)
        definition = self._engine.registry.get(new_task)
        now = self._engine.clock()
        if definition.requires_governance:
            approver = approved_by or record.approved_by
            approver = self._check_approval(True, approver, name)
            if approved_by:
                record.approved_by, record.approved_at = approver, now
            elif record.approved_by is None:
                record.approved_by, record.approved_at = approver, now
        record.expression = parsed.expression
        record.timezone = parsed.timezone
        record.task_name = new_task
        record.kwargs = arguments
        record.misfire = new_misfire
        record.grace_seconds = float(new_grace)
        record.updated_at = now
        record.anchor = now
        if not self._store.put(record):
            raise ScheduleNotFoundError(name)
        logger.info(
            "schedule %s updated: %s runs %s", name, record.expression, new_task
        )
        self._wake.set()
        info = self._info(record)
        self._record(
            AuditAction.SCHEDULE_UPDATE,
            record,
            info,
            {"changes": _changed_fields(before, record)},
        )
        return info

    def enable_schedule(
        self, name: str, approved_by: str | None = None
    ) -> ScheduleInfo:
        """Enable a schedule; fires missed while it was disabled are not run."""
        record = self._get(name)
        definition = self._engine.registry.get(record.task_name)
        now = self._engine.clock()
        if definition.requires_governance:
            record.approved_by = self._check_approval(True, approved_by, name)
            record.approved_at = now
        record.enabled = True
        record.anchor = now
        record.updated_at = now
        if not self._store.put(record):
            raise ScheduleNotFoundError(name)
        logger.info("schedule %s enabled", name)
        self._wake.set()
        info = self._info(record)
        self._record(
            AuditAction.SCHEDULE_ENABLE,
            record,
            info,
            {"approved_by": record.approved_by},
        )
        return info

    def disable_schedule(self, name: str) -> ScheduleInfo:
        record = self._get(name)
        record.enabled = False
        record.updated_at = self._engine.clock()
        if not self._store.put(record):
            raise ScheduleNotFoundError(name)
        logger.info("schedule %s disabled", name)
        self._wake.set()
        info = self._info(record)
        self._record(AuditAction.SCHEDULE_DISABLE, record, info, {})
        return info

    def remove_schedule(self, name: str) -> None:
        record = self._get(name)
        if not self._store.remove(name):
            raise ScheduleNotFoundError(name)
        logger.info("schedule %s removed", name)
        self._wake.set()
        self._record(
            AuditAction.SCHEDULE_REMOVE,
            record,
            None,
            {"task_name": record.task_name, "expression": record.expression},
        )

    # --- reading -------------------------------------------------------------

    def get_schedule(self, name: str) -> ScheduleInfo:
        return self._info(self._get(name))

    def list_schedules(self) -> list[ScheduleInfo]:
        return [self._info(record) for record in self._store.list()]

    def history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        """Return fires, misses and failures of the schedule, newest first."""
        self._get(name)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgumentError(f"invalid limit {limit!r}: pass 1 or more")
        return self._store.history(name, limit)

    def run_now(self, name: str) -> str:
        """Submit the schedule's task at once; return the task id."""
        record = self._get(name)
        now = self._engine.clock()
        task_id = self._submit(record, now)
        self._store.add_event(
            ScheduleEvent(name, EVENT_RUN_NOW, None, now, task_id=task_id)
        )
        record = self._get(name)
        record.last_run = now
        record.last_task_id = task_id
        self._store.put(record)
        logger.info("schedule %s run now as task %s", name, task_id)
        self._record(
            AuditAction.SCHEDULE_RUN_NOW,
            record,
            task_id,
            {"task_id": task_id, "task_name": record.task_name},
        )
        return task_id

    # --- firing ----------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[str]:
        """Run one pass: fire what is due, record what was missed; return task ids.

        Only the lease holder fires. Tests call this with their own `now`.
        """
        with self._tick_lock:
            now = self._engine.clock() if now is None else now
            self.is_leader = self._store.acquire_lease(self.holder, LEASE_TTL, now)
            if not self.is_leader:
                return []
            fired: list[str] = []
            for record in self._store.list():
                if not record.enabled:
                    continue
                try:
                    fired.extend(self._tick_schedule(record, now))
                except Exception:
                    logger.exception("schedule %s could not be handled", record.name)
            return fired

    def _tick_schedule(self, record: ScheduleRecord, now: float) -> list[str]:
        schedule = cron.validate(record.expression, record.timezone)
        due = cron.fires_between(
            schedule, _instant(record.anchor), _instant(now), limit=MAX_MISSES
        )
        if not due:
            return []
        fired: list[str] = []
        last_run = record.last_run
        last_task = record.last_task_id
        missed: list[float] = []
        for fire in due:
            fire_at = fire.timestamp()
            if not self._store.claim_fire(record.name, fire_at):
                continue  # Another scheduler handled this instant.
            if now - fire_at > LATE_TOLERANCE:
                missed.append(fire_at)
                self._store.add_event(
                    ScheduleEvent(record.name, EVENT_MISSED, fire_at, now)
                )
                continue
            task_id = self._fire(record, fire_at, now, EVENT_FIRED)
            if task_id is not None:
                fired.append(task_id)
                last_run, last_task = fire_at, task_id
        if missed:
            logger.warning(
                "schedule %s missed %d fires, the last at %s",
                record.name,
                len(missed),
                _instant(missed[-1]).isoformat(),
            )
        catch_up = (
            record.misfire == MISFIRE_RUN_ONCE
            and missed
            and not fired
            and now - missed[-1] <= record.grace_seconds
            and self._store.claim_fire(f"{record.name}#catch_up", missed[-1])
        )
        if catch_up:
            task_id = self._fire(record, missed[-1], now, EVENT_CATCH_UP)
            if task_id is not None:
                fired.append(task_id)
                last_run, last_task = missed[-1], task_id
        self._save_progress(record, due[-1].timestamp(), last_run, last_task)
        return fired

    def _fire(
        self, record: ScheduleRecord, fire_at: float, now: float, kind: str
    ) -> str | None:
        try:
            task_id = self._submit(record, now)
        except Exception as exc:
            logger.exception("schedule %s: submitting its task failed", record.name)
            self._store.add_event(
                ScheduleEvent(record.name, EVENT_FAILED, fire_at, now, detail=str(exc))
            )
            return None
        self._store.add_event(
            ScheduleEvent(record.name, kind, fire_at, now, task_id=task_id)
        )
        logger.info(
            "schedule %s fired for %s as task %s",
            record.name,
            _instant(fire_at).isoformat(),
            task_id,
        )
        return task_id

    def _save_progress(
        self,
        record: ScheduleRecord,
        anchor: float,
        last_run: float | None,
        last_task: str | None,
    ) -> None:
        # Re-read, so an edit made during this pass is kept; it set its own anchor.
        current = self._store.get(record.name)
        if current is None:
            return
        if current.updated_at == record.updated_at:
            current.anchor = max(current.anchor, anchor)
        current.last_run = last_run
        current.last_task_id = last_task
        self._store.put(current)

    def _submit(self, record: ScheduleRecord, now: float) -> str:
        definition = self._engine.registry.get(record.task_name)
        service = self._engine.task_service
        args, kwargs = service.check_arguments(definition, None, record.kwargs, {})
        approval = None
        if definition.requires_governance:
            if not record.approved_by:
                raise InvalidArgumentError(
                    f"schedule {record.name!r} runs a governance task but has no approval: "
                    "enable it again with approved_by"
                )
            approval = (
                record.approved_by,
                record.approved_at or now,
                f"approved with schedule {record.name!r}",
            )
        return service.submit_checked(
            definition, args, kwargs, queue=TaskQueue.SCHEDULED, approval=approval
        )

    # --- the thread ----------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler thread, after creating the default schedules once."""
        self.seed_defaults()
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="chenu-scheduler", daemon=True
        )
        self._thread.start()
        logger.info("scheduler started as %s", self.holder)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            self._store.release_lease(self.holder)
        except Exception:
            logger.exception("releasing the scheduler lease failed")

    def seed_defaults(self) -> None:
        """Create the default schedules the first time this backend is used."""
        if not self._store.mark_seeded("default_schedules"):
            return
        for spec in DEFAULT_SCHEDULES:
            if self._store.get(spec["name"]) is not None:
                continue
            # Created by the engine, not by an operator: no audit entry.
            try:
                self._add(
                    spec["name"],
                    spec["task_name"],
                    spec["schedule"],
                    timezone=None,
                    misfire=MISFIRE_SKIP,
                    grace_seconds=3600.0,
                    enabled=True,
                    approved_by=None,
                    task_kwargs=spec["task_kwargs"],
                )
            except ChenuError:
                logger.exception(
                    "default schedule %s could not be created", spec["name"]
                )

    def _run(self) -> None:
        from ..pool import ErrorThrottle

        throttle = ErrorThrottle("the scheduler pass")
        while not self._stop.is_set():
            try:
                self.tick()
                throttle.succeeded()
            except Exception:
                throttle.failed()
            now = self._engine.clock()
            # Wake at the next second boundary, so fires start within a second.
            wait = min(MAX_WAIT, max(0.01, math.ceil(now) - now + 0.001))
            self._wake.wait(wait)
            self._wake.clear()

    # --- helpers ---------------------------------------------------------------

    def _record(
        self,
        action: AuditAction,
        record: ScheduleRecord,
        result: Any,
        details: dict[str, Any],
    ) -> None:
        """Append the audit entry of an edit that is stored already."""
        self._engine.audit.record(
            action, TARGET_SCHEDULE, record.name, details=details, result=result
        )

    def _get(self, name: str) -> ScheduleRecord:
        if isinstance(name, str):
            check_text(name, "schedule name")
        record = self._store.get(name)
        if record is None:
            raise ScheduleNotFoundError(name)
        return record

    def _info(self, record: ScheduleRecord) -> ScheduleInfo:
        schedule = cron.validate(record.expression, record.timezone)
        next_run = None
        if record.enabled:
            start = max(record.anchor, self._engine.clock())
            fires = cron.next_fires(schedule, _instant(start), 1)
            next_run = fires[0] if fires else None
        last_status = None
        if record.last_task_id:
            task = self._engine.ledger.get(record.last_task_id)
            last_status = task.status if task is not None else None
        return ScheduleInfo(
            name=record.name,
            task_name=record.task_name,
            expression=record.expression,
            description=cron.describe(schedule),
            timezone=record.timezone,
            enabled=record.enabled,
            next_run=next_run,
            last_run=_aware(record.last_run, record.timezone),
            last_status=last_status,
            last_task_id=record.last_task_id,
            misfire=record.misfire,
            grace_seconds=record.grace_seconds,
            kwargs=dict(record.kwargs),
            approved_by=record.approved_by,
            approved_at=_aware(record.approved_at, record.timezone),
        )

    @staticmethod
    def _check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidArgumentError(
                f"invalid schedule name {name!r}: pass a non-empty string of at most "
                "200 characters"
            )
        check_text(name, "schedule name")
        if "#" in name:
            raise InvalidArgumentError(
                f"invalid schedule name {name!r}: '#' is reserved; choose another name"
            )
        return name.strip()

    def _check_task(
        self, task_name: str, task_kwargs: dict[str, Any] | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        definition = self._engine.registry.get(task_name)
        merged = dict(task_kwargs or {})
        merged.update(extra)
        _, keywords = self._engine.task_service.check_arguments(
            definition, None, merged, {}
        )
        return keywords

    @staticmethod
    def _check_misfire(misfire: str, grace_seconds: float) -> None:
        if misfire not in MISFIRE_POLICIES:
            raise InvalidArgumentError(
                f"invalid misfire policy {misfire!r}: use {' or '.join(MISFIRE_POLICIES)}"
            )
        if (
            isinstance(grace_seconds, bool)
            or not isinstance(grace_seconds, (int, float))
            or not math.isfinite(grace_seconds)
            or grace_seconds < 0
        ):
            raise InvalidArgumentError(
                f"invalid grace_seconds {grace_seconds!r}: pass 0 or more seconds"
            )

    @staticmethod
    def _check_approval(
        required: bool, approved_by: str | None, name: str
    ) -> str | None:
        if not required:
            if isinstance(approved_by, str) and approved_by.strip():
                return check_text(approved_by.strip(), "approved_by")
            return None
        if not isinstance(approved_by, str) or not approved_by.strip():
            raise InvalidArgumentError(
                f"schedule {name!r} runs a governance task: pass approved_by with the "
                "name of the person who approves its runs"
            )
        return check_text(approved_by.strip(), "approved_by")
