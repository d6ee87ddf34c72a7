"""CHE·NU Desktop: a control room for Huey background tasks."""

from .errors import (
    BackendUnavailableError,
    ChenuError,
    ConfigurationError,
    InvalidArgumentError,
    InvalidBackendError,
    InvalidStateError,
    TaskCancelled,
    TaskNotFoundError,
    UnknownTaskError,
)
from .models import TaskPriority, TaskQueue, TaskRecord, TaskStatus
from .registry import background_task

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "ChenuError",
    "ConfigurationError",
    "InvalidArgumentError",
    "InvalidBackendError",
    "InvalidStateError",
    "TaskCancelled",
    "TaskNotFoundError",
    "TaskPriority",
    "TaskQueue",
    "TaskRecord",
    "TaskStatus",
    "UnknownTaskError",
    "background_task",
]
