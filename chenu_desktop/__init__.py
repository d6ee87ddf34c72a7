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
from .context import check_cancelled, current_task, set_progress
from .engine import Engine, open_engine
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
    "Engine",
    "background_task",
    "check_cancelled",
    "current_task",
    "open_engine",
    "set_progress",
]
