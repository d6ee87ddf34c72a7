"""The task service: submit, follow, cancel, retry and approve tasks."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import logging
import math
import sqlite3
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import redis

from .audit.store import TARGET_LEDGER, TARGET_TASK, AuditAction
from .errors import (
    BackendUnavailableError,
    InvalidArgumentError,
    InvalidStateError,
    SubmitUnconfirmedError,
    TaskNotFoundError,
)
from .ledger.base import Update, encode_json
from .ledger.redis_ledger import NotReplicatedError
from .models import (
    RETRYABLE_STATUSES,
    WAITING_STATUSES,
    QueueStats,
    TaskFilter,
    TaskQueue,
    TaskRecord,
    TaskSort,
    TaskStatus,
)
from .registry import APPROVER_PARAMETER, TaskDefinition, check_priority, check_queue
from .sentinel import NoReplicasError

if TYPE_CHECKING:
    from .engine import Engine

logger = logging.getLogger("chenu.tasks")

MAX_PAGE = 1000
_CLEANUP_BATCH = 1000


def check_text(value: str, where: str) -> str:
    """Return `value`, or raise InvalidArgumentError if it cannot be stored as UTF-8.

    Only lone surrogates fail. Python makes them from undecodable bytes, such as
    a command-line argument that is not valid UTF-8.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{where} is {value!r}, which contains the lone surrogate "
            f"{value[exc.start]!r} at index {exc.start} and so is not valid "
            "Unicode text: pass text that encodes as UTF-8 (a terminal or file "
            "in another encoding can cause this)"
        ) from None
    return value


def check_json_value(value: Any, where: str) -> None:
    """Raise InvalidArgumentError unless `value` survives a JSON round trip unchanged."""
    if isinstance(value, str):
        check_text(value, where)
        return
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(
                f"{where} is {value!r}, which JSON cannot store: pass a finite number"
            )
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json_value(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(
                    f"{where} has the key {key!r} of type {type(key).__name__}: "
                    "JSON objects need string keys"
                )
            check_text(key, f"a key of {where}")
            check_json_value(item, f"{where}[{key!r}]")
        return
    raise InvalidArgumentError(
        f"{where} is a {type(value).__name__}, not a JSON value: pass str, int, float, "
        "bool, None, list or dict (convert tuples to lists, dates to ISO strings)"
    )


def _timestamp(value: dt.datetime | float | int | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        # A naive datetime is local time, as in the rest of Python.
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidArgumentError(
        f"invalid {name} {value!r}: pass a datetime or POSIX seconds"
    )


def check_page(limit: Any, offset: Any) -> None:
    """Raise InvalidArgumentError unless `limit` is 1 to MAX_PAGE and `offset` 0 or more."""
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= MAX_PAGE
    ):
        raise InvalidArgumentError(
            f"invalid limit {limit!r}: pass a page size from 1 to {MAX_PAGE}"
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgumentError(f"invalid offset {offset!r}: pass 0 or more")


#: Errors that mean the backend did not respond, not that the input was bad.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ResponseError,
    sqlite3.OperationalError,
)


#: Seconds a submit whose reply was lost waits for the backend to respond again.
SUBMIT_CONFIRM_TIMEOUT = 10.0


def _certainly_not_applied(exc: BaseException) -> bool:
    """Return whether a failed command surely changed nothing on the server.

    True when the connection was refused (redis-py keeps the OSError as the
    cause), the server was still loading its data, or it replied with an error
    (also one that the connection turned into a ConnectionError, such as
    NOREPLICAS behind Sentinel).
    """
    if isinstance(exc, (redis.BusyLoadingError, redis.ResponseError)):
        return True
    if isinstance(exc, NoReplicasError):
        return True
    return isinstance(exc, redis.ConnectionError) and isinstance(
        exc.__cause__, ConnectionRefusedError
    )


def backend_error_message(action: str, backend: str, exc: BaseException) -> str:
    """Describe a backend failure with the likely fix."""
    if isinstance(exc, redis.AuthenticationError):
        return (
            f"{action} failed: the backend {backend} rejected the credentials ({exc}); "
            "check the password in the backend URL"
        )
    if isinstance(exc, NoReplicasError) or (
        isinstance(exc, redis.ResponseError) and "NOREPLICAS" in str(exc)
    ):
        # The master's min-replicas-to-write is not met, as after a failover
        # until the old master has rejoined as a replica.
        return (
            f"{action} failed: the backend {backend} has too few replicas to "
            f"accept writes ({exc}); try again once a replica is connected"
        )
    if isinstance(exc, redis.ResponseError):
        return (
            f"{action} failed: the backend {backend} returned an error ({exc}); "
            "check the database number and options in the backend URL"
        )
    return (
        f"{action} failed: the backend {backend} did not respond ({exc}); "
        "try again once it is reachable"
    )


def wrap_backend_errors(cls: type) -> type:
    """Make each public method raise BackendUnavailableError for backend failures."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(method):
            continue

        def wrapped(
            self: Any, *args: Any, __method: Any = method, **kwargs: Any
        ) -> Any:
            try:
                return __method(self, *args, **kwargs)
            except BACKEND_ERRORS as exc:
                raise BackendUnavailableError(
                    backend_error_message(__method.__name__, self.backend_display, exc)
                ) from exc

        functools.update_wrapper(wrapped, method)
        setattr(cls, name, wrapped)
    return cls


@wrap_backend_errors
class TaskService:
    """Synchronous task API of an engine. Safe to call from any thread but a GUI's.

    Every method may block on the backend; a GUI runs them off its thread.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.backend_display = engine.spec.display

    @property
    def _ledger(self):  # type: ignore[no-untyped-def]
        return self._engine.ledger

    # --- submit ----------------------------------------------------------

    def submit(
        self,
        task_name: str,
        /,
        *,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        priority: int | None = None,
        queue: TaskQueue | str | None = None,
        countdown: float | None = None,
        eta: dt.datetime | float | None = None,
        expires_in: float | None = None,
        task_id: str | None = None,
        retry_of: str | None = None,
        **task_kwargs: Any,
    ) -> str:
        """Record a task and put it on its queue; return its id.

        Keyword arguments other than the options below go to the task.
        Arguments whose names clash with an option go in `kwargs`, and
        positional ones in `args`.

        Args:
            task_name: A name registered with `background_task`.
            args: Positional arguments of the task.
            kwargs: Keyword arguments of the task, for names that clash.
            priority: 0 (first) to 9; defaults to the task's priority.
            queue: The queue to run on instead of the task's own.
            countdown: Seconds to wait before the task may run (0 or more).
            eta: The earliest time to run, as a datetime or POSIX seconds.
            expires_in: Seconds after the submit (or after the ETA) past which
                the task no longer starts and ends as expired.
            task_id: The id to use instead of a new UUID.
            retry_of: The id of the task this one retries (set by `retry`).

        Raises:
            UnknownTaskError: No task has this name.
            InvalidArgumentError: An argument or option is invalid.
            BackendUnavailableError: The backend did not take the task.
        """
        definition = self._engine.registry.get(task_name)
        positional, keywords = self.check_arguments(
            definition, args, kwargs, task_kwargs
        )
        now = self._engine.clock()
        run_at = self._run_at(countdown, eta, now)
        return self.submit_checked(
            definition,
            positional,
            keywords,
            priority=priority,
            queue=queue,
            run_at=run_at,
            expires_at=self._expires_at(expires_in, run_at or now),
            task_id=task_id,
            retry_of=retry_of,
        )

    def submit_as_operator(
        self,
        task_name: str,
        /,
        *,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        priority: int | None = None,
        queue: TaskQueue | str | None = None,
        countdown: float | None = None,
        eta: dt.datetime | float | None = None,
        expires_in: float | None = None,
    ) -> str:
        """Submit as `submit` does, for an operator, and record it in the audit trail.

        The window and the command line submit through here. Application
        code calls `submit`, which writes no audit entry, so the hot path of
        task producers pays nothing for the trail. Task arguments go in
        `args` and `kwargs` only.
        """
        task_id = self.submit(
            task_name,
            args=args,
            kwargs=kwargs,
            priority=priority,
            queue=queue,
            countdown=countdown,
            eta=eta,
            expires_in=expires_in,
        )
        record = self._ledger.get(task_id)
        details: dict[str, Any] = {"task_name": task_name}
        if record is not None:
            details.update(
                queue=record.queue.value,
                priority=record.priority,
                status=record.status.value,
            )
        self._engine.audit.record(
            AuditAction.SUBMIT, TARGET_TASK, task_id, details=details, result=task_id
        )
        return task_id

    def submit_checked(
        self,
        definition: TaskDefinition,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        priority: int | None = None,
        queue: TaskQueue | str | None = None,
        run_at: float | None = None,
        expires_at: float | None = None,
        task_id: str | None = None,
        retry_of: str | None = None,
        approval: tuple[str, float, str | None] | None = None,
    ) -> str:
        """Submit arguments that `check_arguments` accepted; see `submit`.

        `approval` (approver, time, reason) runs a governance task without
        waiting, under an approval given beforehand, as for a schedule.
        """
        task_priority = (
            definition.priority if priority is None else check_priority(priority)
        )
        task_queue = definition.queue if queue is None else check_queue(queue)
        now = self._engine.clock()
        new_id = self._new_id(task_id)
        if definition.requires_governance and approval is None:
            status = TaskStatus.AWAITING_APPROVAL
        elif run_at is not None and run_at > now:
            status = TaskStatus.SCHEDULED
        else:
            status = TaskStatus.PENDING
        approved_by, approved_at, approval_reason = approval or (None, None, None)
        record = TaskRecord(
            task_id=new_id,
            task_name=definition.name,
            queue=task_queue,
            priority=task_priority,
            status=status,
            args=list(args),
            kwargs=dict(kwargs),
            max_retries=definition.max_retries,
            created_at=now,
            eta=run_at,
            expires_at=expires_at,
            retry_of=retry_of,
            requires_governance=definition.requires_governance,
            requeue_on_loss=definition.requeue_on_loss,
            approved_by=approved_by,
            approved_at=approved_at,
            approval_reason=approval_reason,
            updated_at=now,
            history=[[status.value, now]],
        )
        self._store_and_enqueue(record)
        return new_id

    def _store_and_enqueue(self, record: TaskRecord) -> None:
        if record.status is TaskStatus.AWAITING_APPROVAL:
            self._insert(record)
        elif self._engine.spec.kind == "redis":
            self._insert_queued(record)
        else:
            self._insert(record)
            self._enqueue(record)
        logger.info(
            "task %s (%s) submitted as %s",
            record.task_id,
            record.task_name,
            record.status.value,
        )

    def _insert(self, record: TaskRecord) -> None:
        try:
            self._ledger.insert(record)
        except ValueError:
            raise
        except NotReplicatedError as exc:
            raise self._unreplicated(record, exc) from exc
        except Exception as exc:
            raise BackendUnavailableError(
                f"submitting {record.task_name!r} failed: the backend "
                f"{self.backend_display} did not respond ({exc}); nothing was stored"
            ) from exc

    def _insert_queued(self, record: TaskRecord) -> None:
        """Store the record with its message; after a lost reply, find out if it applied."""
        try:
            self._engine.insert_queued(record, self._message_eta(record))
            return
        except ValueError:
            raise
        except NotReplicatedError as exc:
            raise self._unreplicated(record, exc) from exc
        except BACKEND_ERRORS as exc:
            failure = exc
        if _certainly_not_applied(failure):
            raise BackendUnavailableError(
                f"submitting {record.task_name!r} failed: the backend "
                f"{self.backend_display} did not respond ({failure}); nothing was stored"
            ) from failure
        stored = self._stored_once_answered(record.task_id)
        if stored is None:
            raise SubmitUnconfirmedError(
                f"submitting {record.task_name!r} as task {record.task_id} is "
                f"unconfirmed: the backend {self.backend_display} stopped responding "
                f"({failure}) and may have stored it; check with `chenu-desktop tasks "
                f"show {record.task_id}` once it responds, before you submit again",
                record.task_id,
            ) from failure
        if not stored:
            raise BackendUnavailableError(
                f"submitting {record.task_name!r} failed: the backend "
                f"{self.backend_display} lost the connection ({failure}); "
                "nothing was stored"
            ) from failure
        logger.warning(
            "task %s: the reply to its submit was lost, but the backend stored it",
            record.task_id,
        )

    def _unreplicated(
        self, record: TaskRecord, exc: NotReplicatedError
    ) -> SubmitUnconfirmedError:
        # The master stored the task, but a failover before its replicas have
        # it would lose it, so reading it back proves nothing.
        return SubmitUnconfirmedError(
            f"submitting {record.task_name!r} as task {record.task_id} is "
            f"unconfirmed: the backend {self.backend_display} stored it, but {exc}; "
            f"check with `chenu-desktop tasks show {record.task_id}` before you "
            "submit again",
            record.task_id,
        )

    def _stored_once_answered(self, task_id: str) -> bool | None:
        """Return whether the record exists, or None if the backend does not respond."""
        deadline = time.monotonic() + SUBMIT_CONFIRM_TIMEOUT
        pause = threading.Event()
        while True:
            try:
                return self._ledger.get(task_id) is not None
            except BACKEND_ERRORS:
                if time.monotonic() > deadline:
                    return None
            pause.wait(0.1)

    def check_arguments(
        self,
        definition: TaskDefinition,
        args: list[Any] | tuple[Any, ...] | None,
        kwargs: dict[str, Any] | None,
        task_kwargs: dict[str, Any],
    ) -> tuple[list[Any], dict[str, Any]]:
        """Merge and check arguments against the task's signature and JSON.

        Raises:
            InvalidArgumentError: Naming the argument and the fix.
        """
        if args is not None and not isinstance(args, (list, tuple)):
            raise InvalidArgumentError(
                f"args of {definition.name!r} must be a list, not {type(args).__name__}"
            )
        if kwargs is not None and not isinstance(kwargs, dict):
            raise InvalidArgumentError(
                f"kwargs of {definition.name!r} must be a dict, not {type(kwargs).__name__}"
            )
        keywords = dict(kwargs or {})
        for name, value in task_kwargs.items():
            if name in keywords:
                raise InvalidArgumentError(
                    f"argument {name!r} of {definition.name!r} is given twice: "
                    "pass it either in kwargs= or as a keyword, not both"
                )
            keywords[name] = value
        positional = list(args or ())
        if definition.requires_governance and APPROVER_PARAMETER in keywords:
            raise InvalidArgumentError(
                f"argument {APPROVER_PARAMETER!r} of {definition.name!r} is set by "
                "approve(): leave it out of the submit"
            )
        signature = definition.signature
        if definition.requires_governance and definition.takes_approver:
            parameters = [
                p for p in signature.parameters.values() if p.name != APPROVER_PARAMETER
            ]
            signature = signature.replace(parameters=parameters)
        try:
            signature.bind(*positional, **keywords)
        except TypeError as exc:
            raise InvalidArgumentError(
                f"invalid arguments for task {definition.name!r}: {exc}; "
                f"its signature is {definition.name}{signature}"
            ) from None
        for index, value in enumerate(positional):
            check_json_value(value, f"argument {index} of {definition.name!r}")
        for name, value in keywords.items():
            check_text(name, f"an argument name of {definition.name!r}")
            check_json_value(value, f"argument {name!r} of {definition.name!r}")
        limit = self._engine.config.max_argument_bytes
        size = len(encode_json([positional, keywords]).encode("utf-8"))
        if size > limit:
            raise InvalidArgumentError(
                f"arguments of {definition.name!r} take {size} bytes as JSON, over the "
                f"limit of {limit} bytes: pass a reference (a file path or an id) "
                "instead, or raise max_argument_bytes in the configuration"
            )
        return positional, keywords

    def _run_at(
        self, countdown: float | None, eta: dt.datetime | float | None, now: float
    ) -> float | None:
        if countdown is not None and eta is not None:
            raise InvalidArgumentError(
                "both countdown and eta given: pass only one of them"
            )
        if countdown is not None:
            if isinstance(countdown, bool) or not isinstance(countdown, (int, float)):
                raise InvalidArgumentError(
                    f"invalid countdown {countdown!r}: pass seconds as a number"
                )
            if not math.isfinite(countdown) or countdown < 0:
                raise InvalidArgumentError(
                    f"invalid countdown {countdown!r}: pass 0 or more seconds"
                )
            return now + countdown if countdown > 0 else None
        return _timestamp(eta, "eta")

    @staticmethod
    def _expires_at(expires_in: float | None, start: float) -> float | None:
        if expires_in is None:
            return None
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or not math.isfinite(expires_in)
            or expires_in <= 0
        ):
            raise InvalidArgumentError(
                f"invalid expires_in {expires_in!r}: pass a number of seconds above 0"
            )
        return start + expires_in

    def _new_id(self, task_id: str | None) -> str:
        if task_id is None:
            return uuid.uuid4().hex
        if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > 200:
            raise InvalidArgumentError(
                f"invalid task_id {task_id!r}: pass a non-empty string of at most 200 "
                "characters, or none for a new id"
            )
        check_text(task_id, "task_id")
        if self._ledger.get(task_id) is not None:
            raise InvalidArgumentError(
                f"task id {task_id!r} exists already: pass another id or none"
            )
        return task_id

    def _message_eta(self, record: TaskRecord) -> dt.datetime | None:
        if record.eta is not None and record.eta > self._engine.clock():
            return dt.datetime.fromtimestamp(record.eta, dt.timezone.utc)
        return None

    def _enqueue(self, record: TaskRecord) -> None:
        try:
            self._engine.enqueue_message(
                record.queue, record.task_id, record.priority, self._message_eta(record)
            )
        except Exception as exc:
            now = self._engine.clock()
            error = f"enqueue failed: {exc}"
            try:
                self._ledger.update(
                    Update(
                        record.task_id,
                        TaskStatus.FAILURE,
                        {"error": error, "finished_at": now},
                    ),
                    now,
                )
            except Exception:
                logger.exception(
                    "recording the failed enqueue of %s failed", record.task_id
                )
            raise BackendUnavailableError(
                f"task {record.task_id} ({record.task_name}) could not be put on queue "
                f"{record.queue.value}: {exc}; it is recorded as failed, retry it later"
            ) from exc

    # --- follow ----------------------------------------------------------

    def get_status(self, task_id: str) -> TaskRecord:
        """Return the task's record.

        Raises:
            TaskNotFoundError: No task has this id.
        """
        if isinstance(task_id, str):
            check_text(task_id, "task id")
        record = self._ledger.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return record

    def list_tasks(
        self,
        status: TaskStatus | str | None = None,
        queue: TaskQueue | str | None = None,
        task_name: str | None = None,
        text: str | None = None,
        created_after: dt.datetime | float | None = None,
        created_before: dt.datetime | float | None = None,
        limit: int = 50,
        offset: int = 0,
        ascending: bool = False,
        sort: TaskSort | str = TaskSort.CREATED,
    ) -> list[TaskRecord]:
        """Return one page of records, newest first; see `TaskFilter`.

        With `sort`, the largest key comes first instead (see `TaskSort`);
        with `ascending`, the order is reversed.
        """
        task_filter = self.make_filter(
            status, queue, task_name, text, created_after, created_before
        )
        check_page(limit, offset)
        key = self.make_sort(sort)
        return self._ledger.list_tasks(
            task_filter, limit, offset, ascending=ascending, sort=key
        )

    @property
    def sort_keys(self) -> frozenset[TaskSort]:
        """The keys `list_tasks` can sort by on this backend."""
        return self._ledger.sort_keys

    def make_sort(self, sort: TaskSort | str) -> TaskSort:
        """Return `sort` as a `TaskSort` key of this backend.

        Raises:
            InvalidArgumentError: The ledger cannot sort by `sort`.
        """
        key = sort if isinstance(sort, TaskSort) else None
        if key is None and isinstance(sort, str):
            key = next((k for k in TaskSort if k.value == sort), None)
        if key is None or key not in self._ledger.sort_keys:
            choices = ", ".join(sorted(k.value for k in self._ledger.sort_keys))
            raise InvalidArgumentError(
                f"invalid sort key {sort!r}: use one of {choices}"
            )
        return key

    def count_tasks(
        self,
        status: TaskStatus | str | None = None,
        queue: TaskQueue | str | None = None,
        task_name: str | None = None,
        text: str | None = None,
        created_after: dt.datetime | float | None = None,
        created_before: dt.datetime | float | None = None,
    ) -> int:
        """Return how many records match; same filters as `list_tasks`."""
        return self._ledger.count_tasks(
            self.make_filter(
                status, queue, task_name, text, created_after, created_before
            )
        )

    @staticmethod
    def make_filter(
        status: TaskStatus | str | None = None,
        queue: TaskQueue | str | None = None,
        task_name: str | None = None,
        text: str | None = None,
        created_after: dt.datetime | float | None = None,
        created_before: dt.datetime | float | None = None,
    ) -> TaskFilter:
        task_status = None
        if status is not None:
            try:
                task_status = TaskStatus(status)
            except ValueError:
                names = ", ".join(s.value for s in TaskStatus)
                raise InvalidArgumentError(
                    f"invalid status {status!r}: use one of {names}"
                ) from None
        if isinstance(task_name, str):
            check_text(task_name, "task name filter")
        if isinstance(text, str):
            check_text(text, "search text")
        return TaskFilter(
            status=task_status,
            queue=None if queue is None else check_queue(queue),
            task_name=task_name or None,
            text=(text.strip() or None) if isinstance(text, str) else None,
            created_after=_timestamp(created_after, "created_after"),
            created_before=_timestamp(created_before, "created_before"),
        )

    def queue_stats(self) -> dict[TaskQueue, QueueStats]:
        """Return per-queue figures: counts, recent throughput, durations, workers."""
        engine = self._engine
        now = engine.clock()
        workers = engine.ledger.list_workers(now)
        paused = engine.ledger.paused_queues()
        return engine.ledger.queue_stats(now, workers, paused)

    def registered_tasks(self) -> list[dict[str, Any]]:
        """Return name, queue, priority, retries, governance and signature of each task."""
        return [d.describe() for d in self._engine.registry.definitions()]

    # --- actions ---------------------------------------------------------

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a task: at once if it waits, by request if it runs.

        Raises:
            TaskNotFoundError: No task has this id.
            InvalidStateError: The task has finished already.
        """
        ledger = self._ledger
        for _ in range(5):
            record = self.get_status(task_id)
            now = self._engine.clock()
            if record.status in WAITING_STATUSES:
                updated = ledger.update(
                    Update(
                        task_id,
                        TaskStatus.CANCELLED,
                        {
                            "finished_at": now,
                            "cancel_requested": True,
                            "next_attempt_at": None,
                        },
                        expected=frozenset({record.status}),
                    ),
                    now,
                )
            elif record.status is TaskStatus.RUNNING:
                updated = ledger.update(
                    Update(
                        task_id,
                        None,
                        {"cancel_requested": True},
                        expected=frozenset({TaskStatus.RUNNING}),
                    ),
                    now,
                )
                if updated is not None:
                    context = self._engine.local_contexts.get(task_id)
                    if context is not None:
                        context.request_cancel()
            else:
                raise InvalidStateError(
                    f"task {task_id} has finished as {record.status.value}: "
                    "there is nothing to cancel"
                )
            if updated is not None:
                outcome = (
                    "cancel_requested"
                    if updated.status is TaskStatus.RUNNING
                    else "cancelled"
                )
                logger.info("task %s: %s", task_id, outcome.replace("_", " "))
                self._engine.audit.record(
                    AuditAction.CANCEL,
                    TARGET_TASK,
                    task_id,
                    details={
                        "task_name": record.task_name,
                        "previous_status": record.status.value,
                        "outcome": outcome,
                    },
                    result=updated,
                )
                return updated
        raise InvalidStateError(
            f"task {task_id} kept changing while it was being cancelled: try again"
        )

    def retry(self, task_id: str) -> str:
        """Submit a new task with the same name, arguments, queue and priority.

        Returns the new id; the two records link to each other.

        Raises:
            TaskNotFoundError: No task has this id.
            InvalidStateError: The task is not failed, cancelled, expired, lost or
                rejected, or was retried already.
        """
        record = self.get_status(task_id)
        if record.status not in RETRYABLE_STATUSES:
            allowed = ", ".join(sorted(s.value for s in RETRYABLE_STATUSES))
            raise InvalidStateError(
                f"task {task_id} is {record.status.value}: only {allowed} tasks can be retried"
            )
        if record.retried_as:
            raise InvalidStateError(
                f"task {task_id} was retried already as {record.retried_as}: retry that one"
            )
        kwargs = dict(record.kwargs)
        if record.requires_governance:
            kwargs.pop(APPROVER_PARAMETER, None)
        if self._engine.registry.find(record.task_name) is not None:
            new_id = self.submit(
                record.task_name,
                args=record.args,
                kwargs=kwargs,
                priority=record.priority,
                queue=record.queue,
                retry_of=task_id,
            )
        else:
            # The task's module is not imported here (a dashboard or a script);
            # the stored record has all that a worker importing the task needs.
            new_id = self._copy_for_retry(record, kwargs)
        self._ledger.update(
            Update(task_id, None, {"retried_as": new_id}), self._engine.clock()
        )
        logger.info("task %s retried as %s", task_id, new_id)
        self._engine.audit.record(
            AuditAction.RETRY,
            TARGET_TASK,
            task_id,
            details={
                "task_name": record.task_name,
                "previous_status": record.status.value,
                "new_task_id": new_id,
            },
            result=new_id,
        )
        return new_id

    def _copy_for_retry(self, record: TaskRecord, kwargs: dict[str, Any]) -> str:
        now = self._engine.clock()
        status = (
            TaskStatus.AWAITING_APPROVAL
            if record.requires_governance
            else TaskStatus.PENDING
        )
        copy = TaskRecord(
            task_id=uuid.uuid4().hex,
            task_name=record.task_name,
            queue=record.queue,
            priority=record.priority,
            status=status,
            args=list(record.args),
            kwargs=kwargs,
            max_retries=record.max_retries,
            created_at=now,
            retry_of=record.task_id,
            requires_governance=record.requires_governance,
            requeue_on_loss=record.requeue_on_loss,
            updated_at=now,
            history=[[status.value, now]],
        )
        self._store_and_enqueue(copy)
        return copy.task_id

    def approve(
        self, task_id: str, approver: str, reason: str | None = None
    ) -> TaskRecord:
        """Approve a task awaiting approval and put it on its queue.

        Raises:
            TaskNotFoundError: No task has this id.
            InvalidArgumentError: The approver is empty.
            InvalidStateError: The task is not awaiting approval.
        """
        approver = self._check_person(approver, "approver")
        if reason is not None:
            if not isinstance(reason, str):
                raise InvalidArgumentError(
                    f"invalid reason {reason!r}: pass text, or None for no reason"
                )
            check_text(reason, "reason")
        record = self.get_status(task_id)
        now = self._engine.clock()
        status = TaskStatus.PENDING
        if record.eta is not None and record.eta > now:
            status = TaskStatus.SCHEDULED
        updated = self._ledger.update(
            Update(
                task_id,
                status,
                {
                    "approved_by": approver,
                    "approved_at": now,
                    "approval_reason": reason,
                },
                expected=frozenset({TaskStatus.AWAITING_APPROVAL}),
            ),
            now,
        )
        if updated is None:
            raise self._not_awaiting(task_id, "approved")
        # Enqueue before the audit write, so a failed write never leaves an
        # approved task off its queue. A failed enqueue raises with the task
        # recorded as failed and writes no entry, but the record keeps the approver.
        self._enqueue(updated)
        logger.info("task %s approved by %s", task_id, approver)
        self._record_decision(AuditAction.APPROVE, updated, approver, reason)
        return updated

    def reject(self, task_id: str, approver: str, reason: str) -> TaskRecord:
        """End a task awaiting approval as rejected, with the reason.

        Raises:
            TaskNotFoundError: No task has this id.
            InvalidArgumentError: The approver or the reason is empty.
            InvalidStateError: The task is not awaiting approval.
        """
        approver = self._check_person(approver, "approver")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidArgumentError(
                f"invalid reason {reason!r}: a rejection needs a reason the submitter can read"
            )
        check_text(reason, "reason")
        check_text(task_id, "task id")
        now = self._engine.clock()
        updated = self._ledger.update(
            Update(
                task_id,
                TaskStatus.REJECTED,
                {
                    "approved_by": approver,
                    "approved_at": now,
                    "approval_reason": reason.strip(),
                    "finished_at": now,
                },
                expected=frozenset({TaskStatus.AWAITING_APPROVAL}),
            ),
            now,
        )
        if updated is None:
            raise self._not_awaiting(task_id, "rejected")
        logger.info("task %s rejected by %s: %s", task_id, approver, reason)
        self._record_decision(AuditAction.REJECT, updated, approver, reason.strip())
        return updated

    def _record_decision(
        self,
        action: AuditAction,
        record: TaskRecord,
        approver: str,
        reason: str | None,
    ) -> None:
        self._engine.audit.record(
            action,
            TARGET_TASK,
            record.task_id,
            reason=reason,
            details={
                "task_name": record.task_name,
                "approver": approver,
                "status": record.status.value,
            },
            result=record,
        )

    def _not_awaiting(self, task_id: str, action: str) -> InvalidStateError:
        current = self.get_status(task_id)
        return InvalidStateError(
            f"task {task_id} is {current.status.value}, not awaiting approval: "
            f"only awaiting tasks can be {action}"
        )

    @staticmethod
    def _check_person(name: Any, role: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(
                f"invalid {role} {name!r}: pass the name of the person who decides"
            )
        return check_text(name.strip(), role)

    def cleanup(self, older_than_days: float = 30) -> int:
        """Delete finished records as `delete_finished` does, and audit the cleanup.

        Audit entries are not task records, so no cleanup deletes them.
        """
        deleted = self.delete_finished(older_than_days)
        self._engine.audit.record(
            AuditAction.CLEANUP,
            TARGET_LEDGER,
            "finished tasks",
            details={"older_than_days": older_than_days, "deleted": deleted},
            result=deleted,
        )
        return deleted

    def delete_finished(self, older_than_days: float = 30) -> int:
        """Delete finished records older than that many days; return how many.

        Waiting and running tasks are never deleted, however old. Writes no
        audit entry: the built-in ``cleanup_old_data`` task calls this, and
        its own record contains the count.
        """
        if (
            isinstance(older_than_days, bool)
            or not isinstance(older_than_days, (int, float))
            or not math.isfinite(older_than_days)
            or older_than_days < 0
        ):
            raise InvalidArgumentError(
                f"invalid older_than_days {older_than_days!r}: pass 0 or more days"
            )
        cutoff = self._engine.clock() - older_than_days * 86400
        deleted = 0
        while True:
            ids = self._ledger.delete_finished_before(cutoff, _CLEANUP_BATCH)
            deleted += len(ids)
            if len(ids) < _CLEANUP_BATCH:
                break
        logger.info(
            "cleanup removed %d records finished over %s days ago",
            deleted,
            older_than_days,
        )
        return deleted


class AsyncService:
    """The public methods of a service as coroutines, each run in a thread."""

    def __init__(self, service: TaskService) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        method = getattr(self._service, name)
        if not callable(method) or not inspect.ismethod(method):
            raise AttributeError(name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


#: `TaskService` as coroutines.
AsyncTaskService = AsyncService

__all__ = [
    "AsyncService",
    "AsyncTaskService",
    "TaskService",
    "check_json_value",
]
