"""Errors raised on bad input. Each is a ValueError whose message names the fix."""

from __future__ import annotations


class ChenuError(ValueError):
    """Base class of the errors this package raises on bad input."""


class TaskNotFoundError(ChenuError):
    """No task with that id is in the ledger."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"task {task_id!r} not found: check the id with `chenu-desktop tasks list`"
        )
        self.task_id = task_id


class UnknownTaskError(ChenuError):
    """No task of that name is registered."""

    def __init__(self, task_name: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown task name {task_name!r}: register it with @background_task "
            f"or use one of: {hint}"
        )
        self.task_name = task_name


class InvalidArgumentError(ChenuError):
    """A submit argument is missing, unexpected or not a JSON value."""


class InvalidStateError(ChenuError):
    """The task's status does not allow the requested action."""


class InvalidBackendError(ChenuError):
    """The backend URL is not one this package can open."""


class ConfigurationError(ChenuError):
    """The configuration file or an option has an invalid value."""


class BackendUnavailableError(RuntimeError):
    """The backend (Redis or the SQLite file) did not respond.

    Not a ValueError: the input was fine, so retrying later may succeed.
    """


class TaskCancelled(Exception):
    """Raised inside a running task by `check_cancelled()` after a cancel request."""


class SubmitUnconfirmedError(BackendUnavailableError):
    """The backend stopped responding while it stored a task, so the outcome is unknown.

    Attributes:
        task_id: The id the task has if the backend stored it.
    """

    def __init__(self, message: str, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id
