"""The task registry and the `background_task` decorator."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from typing import Any, Callable

from .errors import ChenuError, InvalidArgumentError, UnknownTaskError
from .models import MAX_PRIORITY, MIN_PRIORITY, TaskPriority, TaskQueue

#: Parameter receiving the approver's name when a governance task runs.
APPROVER_PARAMETER = "approved_by"


@dataclasses.dataclass(frozen=True)
class TaskDefinition:
    """A registered task: the function and its defaults."""

    name: str
    func: Callable[..., Any]
    queue: TaskQueue
    priority: int
    max_retries: int
    retry_delay: float
    retry_backoff: float
    requires_governance: bool
    requeue_on_loss: bool
    description: str

    # The properties below are read at every submit and run, and a definition
    # never changes, so each is computed once.

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        try:
            # Resolves string annotations (from `from __future__ import annotations`).
            return inspect.signature(self.func, eval_str=True)
        except (NameError, SyntaxError, TypeError):
            return inspect.signature(self.func)

    @functools.cached_property
    def takes_approver(self) -> bool:
        return APPROVER_PARAMETER in self.signature.parameters

    def retry_delay_for(self, attempt: int) -> float:
        """Return the delay in seconds before retry number `attempt` (1-based)."""
        if self.retry_backoff and self.retry_backoff > 1:
            return self.retry_delay * self.retry_backoff ** (attempt - 1)
        return self.retry_delay

    def describe(self) -> dict[str, Any]:
        """Return the JSON-ready summary `registered_tasks()` lists."""
        parameters = []
        for parameter in self.signature.parameters.values():
            entry: dict[str, Any] = {
                "name": parameter.name,
                "kind": parameter.kind.name,
            }
            if parameter.default is not inspect.Parameter.empty:
                entry["default"] = parameter.default
            if parameter.annotation is not inspect.Parameter.empty:
                annotation = parameter.annotation
                entry["annotation"] = (
                    annotation
                    if isinstance(annotation, str)
                    else inspect.formatannotation(annotation)
                )
            parameters.append(entry)
        return {
            "name": self.name,
            "queue": self.queue.value,
            "priority": self.priority,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "requires_governance": self.requires_governance,
            "requeue_on_loss": self.requeue_on_loss,
            "is_async": self.is_async,
            "signature": f"{self.name}{self.signature}",
            "parameters": parameters,
            "description": self.description,
        }


class TaskRegistry:
    """Task definitions by name; thread-safe, since workers read it."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition] = {}
        self._lock = threading.Lock()

    def add(self, definition: TaskDefinition) -> None:
        with self._lock:
            existing = self._tasks.get(definition.name)
            if existing is not None and existing.func is not definition.func:
                same_place = (
                    existing.func.__module__ == definition.func.__module__
                    and existing.func.__qualname__ == definition.func.__qualname__
                )
                if not same_place:
                    raise ChenuError(
                        f"task name {definition.name!r} is already registered by "
                        f"{existing.func.__module__}.{existing.func.__qualname__}: "
                        "choose another name"
                    )
            self._tasks[definition.name] = definition

    def get(self, name: str) -> TaskDefinition:
        with self._lock:
            definition = self._tasks.get(name)
            if definition is None:
                raise UnknownTaskError(name, list(self._tasks))
            return definition

    def find(self, name: str) -> TaskDefinition | None:
        with self._lock:
            return self._tasks.get(name)

    def remove(self, name: str) -> None:
        with self._lock:
            self._tasks.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._tasks)

    def definitions(self) -> list[TaskDefinition]:
        with self._lock:
            return [self._tasks[name] for name in sorted(self._tasks)]


#: Tasks registered by `background_task`; every engine in the process uses it.
default_registry = TaskRegistry()


def check_priority(value: Any) -> int:
    """Return `value` as an int priority, or raise naming the valid range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            f"invalid priority {value!r}: use a TaskPriority or an int from "
            f"{MIN_PRIORITY} (runs first) to {MAX_PRIORITY}"
        )
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidArgumentError(
            f"invalid priority {value}: use a value from {MIN_PRIORITY} (runs first) "
            f"to {MAX_PRIORITY}"
        )
    return int(value)


def check_queue(value: Any) -> TaskQueue:
    """Return `value` as a TaskQueue, or raise naming the valid queues."""
    try:
        return TaskQueue(value)
    except ValueError:
        names = ", ".join(q.value for q in TaskQueue)
        raise InvalidArgumentError(
            f"invalid queue {value!r}: use one of {names}"
        ) from None


def background_task(
    name: str | None = None,
    *,
    queue: TaskQueue | str = TaskQueue.DEFAULT,
    priority: int = TaskPriority.NORMAL,
    max_retries: int = 0,
    retry_delay: float = 0.0,
    retry_backoff: float = 1.0,
    requires_governance: bool = False,
    requeue_on_loss: bool = False,
    registry: TaskRegistry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function (plain or ``async def``) as a task.

    The function stays callable as before. Submit it by name through
    ``engine.task_service.submit(name, ...)``.

    Args:
        name: The task name; defaults to the function's name.
        queue: The queue its tasks go to.
        priority: The default priority; ``submit(priority=...)`` overrides it.
        max_retries: Automatic retries after a failed attempt.
        retry_delay: Seconds before the first automatic retry.
        retry_backoff: Factor applied to the delay for each later retry.
        requires_governance: Tasks wait for ``approve()`` before they run.
        requeue_on_loss: The task is safe to run again if its worker dies.
    """
    task_queue = check_queue(queue)
    task_priority = check_priority(priority)
    if (
        isinstance(max_retries, bool)
        or not isinstance(max_retries, int)
        or max_retries < 0
    ):
        raise InvalidArgumentError(
            f"invalid max_retries {max_retries!r}: use an int of 0 or more"
        )
    if retry_delay < 0:
        raise InvalidArgumentError(
            f"invalid retry_delay {retry_delay!r}: use 0 or more seconds"
        )
    if retry_backoff < 1:
        raise InvalidArgumentError(
            f"invalid retry_backoff {retry_backoff!r}: use 1 (no backoff) or more"
        )

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            raise InvalidArgumentError(
                f"task {func.__qualname__} is a generator: tasks must return a value"
            )
        definition = TaskDefinition(
            name=name or func.__name__,
            func=func,
            queue=task_queue,
            priority=task_priority,
            max_retries=max_retries,
            retry_delay=float(retry_delay),
            retry_backoff=float(retry_backoff),
            requires_governance=requires_governance,
            requeue_on_loss=requeue_on_loss,
            description=inspect.getdoc(func) or "",
        )
        (registry or default_registry).add(definition)
        func.task_definition = definition  # type: ignore[attr-defined]
        return func

    return decorator
