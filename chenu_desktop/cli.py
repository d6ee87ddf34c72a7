"""The ``chenu-desktop`` command line: headless workers, task and schedule commands."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import logging
import os
import queue
import signal
import sqlite3
import sys
import threading
import unicodedata
from typing import Any, Callable, Iterator, Mapping, Sequence

import redis

from . import __version__
from .audit.service import AuditWriteError
from .backend import mask_url, parse_backend
from .config import Config, check_worker_count, load_config
from .engine import Engine
from .logs import file_logging
from .errors import (
    BackendUnavailableError,
    ChenuError,
    ConfigurationError,
    InvalidArgumentError,
    UnknownTaskError,
)
from .models import QueueStats, TaskQueue, TaskRecord, TaskStatus
from .preview import arguments_value, json_preview
from .registry import check_queue

logger = logging.getLogger("chenu.cli")

PROG = "chenu-desktop"
#: Exit status when the backend is unreachable, so retrying later may succeed.
EXIT_UNAVAILABLE = 1
#: Exit status of bad input, the same as argparse's usage errors.
EXIT_BAD_INPUT = 2
#: Seconds `worker` waits for running tasks after SIGINT or SIGTERM by default.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0

#: Errors that the ledger and Huey raise when the backend is unreachable.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    BackendUnavailableError,
    redis.ConnectionError,
    redis.TimeoutError,
    sqlite3.OperationalError,
)
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STATUS_NAMES = ", ".join(status.value for status in TaskStatus)
_QUEUE_NAMES = ", ".join(q.value for q in TaskQueue)
#: Record fields holding POSIX timestamps, shown as local times by `tasks show`.
_TIME_FIELDS = frozenset(
    {
        "created_at",
        "eta",
        "expires_at",
        "started_at",
        "finished_at",
        "next_attempt_at",
        "approved_at",
        "updated_at",
    }
)


# --- settings and the engine ----------------------------------------------


def load_settings(args: argparse.Namespace) -> Config:
    """Load the configuration and put ``--backend`` on top of it.

    The backend is ``--backend``, else ``$CHENU_BACKEND``, else the file's
    ``backend``, else SQLite in the user data dir. The masked URL is kept in
    ``args.backend_display`` for error messages.
    """
    config = load_config(args.config)
    if args.backend is not None:
        # An empty --backend must not fall back to the file silently.
        parse_backend(args.backend)
        config = config.with_backend(args.backend.strip())
    args.backend_display = mask_url(config.backend_url)
    return config


def open_cli_engine(config: Config) -> Engine:
    """Open the engine, raising BackendUnavailableError on an OSError."""
    try:
        return Engine(config)
    except OSError as exc:
        raise BackendUnavailableError(
            f"opening the backend {mask_url(config.backend_url)} failed: {exc}"
        ) from exc


def import_task_modules(names: Sequence[str]) -> None:
    """Import the user modules that register tasks, by dotted name.

    The current directory goes on ``sys.path`` first, so a module next to the
    caller works when the program runs as the installed script too.

    Raises:
        ConfigurationError: A module failed to import; the message names it.
    """
    if names and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        hint = ""
        if name.endswith(".py") or "/" in name or os.sep in name:
            hint = (
                "; pass a dotted module name such as mypackage.tasks, not a file path"
            )
        try:
            importlib.import_module(name)
        except Exception as exc:
            logger.debug("importing task module %s failed", name, exc_info=True)
            raise ConfigurationError(
                f"importing task module {name!r} failed: {type(exc).__name__}: {exc}"
                f"{hint} (rerun with -vv for the traceback)"
            ) from None
        logger.info("task module %s imported", name)


# --- worker ------------------------------------------------------------------


def parse_queue_list(text: str) -> set[TaskQueue]:
    """Parse ``--queues``: queue names separated by commas."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InvalidArgumentError(
            f"invalid --queues {text!r}: name at least one of {_QUEUE_NAMES}"
        )
    return {check_queue(name) for name in names}


def parse_worker_counts(items: Sequence[str]) -> dict[TaskQueue, int]:
    """Parse ``--workers`` items of the form ``QUEUE=N``."""
    counts: dict[TaskQueue, int] = {}
    for item in items:
        name, separator, text = item.partition("=")
        if not separator:
            raise InvalidArgumentError(
                f"invalid --workers item {item!r}: use QUEUE=N, such as default=4"
            )
        task_queue = check_queue(name.strip())
        if task_queue in counts:
            raise InvalidArgumentError(
                f"queue {task_queue.value!r} is given twice in --workers: give it once"
            )
        try:
            count: Any = int(text)
        except ValueError:
            count = text  # check_worker_count rejects it, naming the valid range
        counts[task_queue] = check_worker_count(task_queue, count)
    return counts


class StopSignals:
    """Turns SIGINT and SIGTERM into a stop request for the main thread.

    The handlers only record the signal, because a handler that takes a
    lock can deadlock against the code it interrupted. A second signal ends
    the process at once with status 128 + the signal number, without
    waiting for running tasks.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        # SimpleQueue.put is reentrant, so a signal handler may call it.
        self._received: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._count = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> bool:
        """Install the handlers and return True, or return False off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning(
                "not on the main thread: SIGINT and SIGTERM will not stop this worker"
            )
            return False
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def wait(self) -> str:
        """Block until the first signal arrives and return its name."""
        while True:
            # A timed wait returns to Python code now and then, so a pending
            # handler runs even where a signal does not interrupt a lock wait.
            try:
                signum = self._received.get(timeout=0.5)
            except queue.Empty:
                continue
            return signal.Signals(signum).name

    def _handle(self, signum: int, frame: object) -> None:
        self._count += 1
        if self._count > 1:
            name = signal.Signals(signum).name
            # os.write, because print() may be in the middle of a write already.
            os.write(2, f"{name} received again: exiting without waiting\n".encode())
            os._exit(128 + signum)
        self._received.put(signum)


def serve(
    config: Config, queues: set[TaskQueue], shutdown_timeout: float, demo: bool = False
) -> int:
    """Run the workers of `queues` in the foreground until SIGINT or SIGTERM.

    With `demo`, a mix of the example tasks is submitted once they run.
    """
    with file_logging():
        return _serve(config, queues, shutdown_timeout, demo)


def _serve(
    config: Config, queues: set[TaskQueue], shutdown_timeout: float, demo: bool
) -> int:
    engine = open_cli_engine(config)
    stop_signals = StopSignals()
    try:
        stop_signals.install()
        engine.start_workers(queues)
        if demo:
            from .demo import submit_demo_work

            logger.info("submitted %d demo tasks", len(submit_demo_work(engine)))
        counts = ", ".join(
            f"{q.value}={engine.config.workers.get(q, 0)}"
            for q in TaskQueue
            if q in queues
        )
        logger.info(
            "worker running on %s (pid %d): queues %s; worker threads %s",
            engine.spec.display,
            os.getpid(),
            ", ".join(q.value for q in TaskQueue if q in queues),
            counts,
        )
        if not any(engine.config.workers.get(q, 0) for q in queues):
            logger.warning(
                "no worker threads on the chosen queues, so no task will run here: "
                "set some with --workers QUEUE=N"
            )
        logger.info("press Ctrl+C or send SIGTERM to stop")
        signal_name = stop_signals.wait()
        print(
            f"{signal_name} received: stopping, waiting up to {shutdown_timeout:g} s "
            "for running tasks (send it again to exit at once)",
            file=sys.stderr,
            flush=True,
        )
        if not engine.stop_workers(shutdown_timeout):
            logger.warning(
                "shutdown timed out after %g s: running tasks are abandoned at exit",
                shutdown_timeout,
            )
    finally:
        engine.close(shutdown_timeout)
        stop_signals.restore()
    logger.info("worker stopped")
    return 0


def run_worker(args: argparse.Namespace) -> int:
    import_task_modules(args.tasks or [])
    queues = parse_queue_list(args.queues) if args.queues else set(TaskQueue)
    counts = parse_worker_counts(args.workers or [])
    outside = [q.value for q in TaskQueue if q in counts and q not in queues]
    if outside:
        raise InvalidArgumentError(
            f"--workers sets queue {outside[0]!r}, which is not in --queues: "
            "add it to --queues or drop it from --workers"
        )
    if args.shutdown_timeout < 0:
        raise InvalidArgumentError(
            f"invalid --shutdown-timeout {args.shutdown_timeout:g}: "
            "pass 0 or more seconds"
        )
    config = load_settings(args)
    config = dataclasses.replace(config, workers={**config.workers, **counts})
    return serve(config, queues, args.shutdown_timeout)


def check_display(environ: Mapping[str, str] | None = None) -> None:
    """Raise a clear error when the window has no screen to open on (Linux).

    Without one, Qt aborts the whole process with its own message.
    """
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return
    raise ConfigurationError(
        "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): "
        "start chenu-desktop in a desktop session, or run the workers without the "
        "window with chenu-desktop --headless"
    )


def run_desktop(args: argparse.Namespace) -> int:
    """Open the window with the workers inside, or run them headless."""
    import_task_modules(args.window_tasks or [])
    if args.headless:
        return _run_headless(args)
    check_display()
    try:
        from .ui.app import run_window, show_startup_error
    except ImportError as exc:
        logger.warning(
            "the window cannot start (%s): running the engine headless instead", exc
        )
        return _run_headless(args)
    with file_logging():
        try:
            config = load_settings(args)
            if args.demo:
                from . import demo  # noqa: F401  (registers the example tasks)
            return run_window(config, demo=args.demo, minimized=args.minimized)
        except (ChenuError, *BACKEND_ERRORS) as exc:
            # A launch from the desktop's menu has no terminal for the error line.
            text = startup_error_text(args, exc)
            logger.error("the window cannot start: %s", text)
            show_startup_error(text)
            raise


def startup_error_text(args: argparse.Namespace, exc: BaseException) -> str:
    """Return what the operator reads when the window cannot start, with the fix."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ChenuError) and not isinstance(exc, BackendUnavailableError):
        return message
    display = args.backend_display or "the configured backend"
    if display not in message:
        message = f"backend {display} is unavailable: {message}"
    source = _backend_source(args)
    return (
        f"{message}. The backend comes from {source}: start the server, fix the URL "
        "there, or start with --backend URL to use another one."
    )


def _backend_source(args: argparse.Namespace) -> str:
    if args.backend:
        return "--backend"
    if os.environ.get("CHENU_BACKEND"):
        return "$CHENU_BACKEND"
    path = args.config or os.environ.get("CHENU_CONFIG")
    return f"the configuration file {path}" if path else "the configuration file"


def _run_headless(args: argparse.Namespace) -> int:
    config = load_settings(args)
    if args.demo:
        from . import demo  # noqa: F401  (registers the example tasks)
    logger.info("running the engine headless on every queue until Ctrl+C")
    return serve(config, set(TaskQueue), DEFAULT_SHUTDOWN_TIMEOUT, demo=args.demo)


# --- output ------------------------------------------------------------------


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def display_width(text: str) -> int:
    """Return the terminal columns `text` takes: two for wide East Asian characters.

    Combining marks and format characters such as the zero-width joiner take
    none. NOTE: an emoji sequence joined by U+200D is counted per emoji, so it
    takes more columns here than in terminals that draw it as one glyph.
    """
    width = 0
    for char in text:
        if unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Lay out rows under headers in columns two spaces apart."""
    widths = [display_width(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [
            cell + " " * (width - display_width(cell))
            for cell, width in zip(row, widths)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_time(timestamp: float | None, with_zone: bool = False) -> str:
    if timestamp is None:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp).astimezone()
    if with_zone:
        return moment.isoformat(timespec="seconds")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_value(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in _TIME_FIELDS:
        return format_time(value, with_zone=True)
    if name == "duration_seconds":
        return format_seconds(value)
    if isinstance(value, (list, dict, bool)) or name == "result":
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def print_record(record: TaskRecord) -> None:
    """Print every field as ``name: value``, with the traceback in full at the end."""
    data = record.to_dict()
    traceback = data.pop("traceback", None)
    for name, value in data.items():
        print(f"{name}: {format_value(name, value)}")
    if traceback:
        print("traceback:")
        print(traceback.rstrip("\n"))
    else:
        print("traceback: -")


def stats_row(stats: QueueStats) -> list[str]:
    # The newest entry of throughput_per_minute is the current minute so far.
    this_minute = stats.throughput_per_minute[-1] if stats.throughput_per_minute else 0
    return [
        stats.queue.value,
        str(stats.pending),
        str(stats.scheduled),
        str(stats.count(TaskStatus.AWAITING_APPROVAL)),
        str(stats.running),
        str(stats.count(TaskStatus.RETRYING)),
        str(stats.succeeded_last_hour),
        str(stats.failed_last_hour),
        str(this_minute),
        format_seconds(stats.mean_duration),
        format_seconds(stats.p95_duration),
        format_seconds(stats.oldest_waiting_age),
        f"{stats.workers_busy}/{stats.workers_total}",
        "yes" if stats.paused else "no",
    ]


STATS_HEADERS = (
    "QUEUE", "PENDING", "SCHEDULED", "AWAITING", "RUNNING", "RETRYING",
    "OK/1H", "FAILED/1H", "THIS MIN", "MEAN", "P95", "OLDEST WAIT", "BUSY/WORKERS",
    "PAUSED",
)  # fmt: skip


# --- tasks commands ----------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite JSON number")


def parse_json_value(text: str) -> Any:
    """Parse `text` as JSON, raising ValueError for NaN and Infinity too."""
    return json.loads(text, parse_constant=_reject_constant)


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments, decoding each value that is valid JSON."""
    values: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        key = key.strip()
        if not separator or not key.isidentifier():
            raise InvalidArgumentError(
                f"invalid task argument {item!r}: use NAME=VALUE, such as days=7"
            )
        if key in values:
            raise InvalidArgumentError(
                f"task argument {key!r} is given twice: give it once"
            )
        try:
            values[key] = parse_json_value(text)
        except ValueError:
            values[key] = text
    return values


def parse_json_option(option: str, text: str | None, expected: type) -> Any:
    if text is None:
        return None
    example = "'[1, \"a\"]'" if expected is list else "'{\"days\": 7}'"
    kind = "list" if expected is list else "object"
    try:
        value = parse_json_value(text)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"invalid {option}: {exc}; pass a JSON {kind} such as {example}"
        ) from None
    if not isinstance(value, expected):
        raise InvalidArgumentError(
            f"invalid {option}: got a JSON {type(value).__name__}; "
            f"pass a JSON {kind} such as {example}"
        )
    return value


def parse_task_keywords(
    kwargs_json: str | None, assignments: Sequence[str]
) -> dict[str, Any]:
    """Merge ``--kwargs-json`` and ``KEY=VALUE`` items, raising if a key is in both."""
    keywords = parse_json_option("--kwargs-json", kwargs_json, dict) or {}
    for key, value in parse_assignments(assignments).items():
        if key in keywords:
            raise InvalidArgumentError(
                f"task argument {key!r} is given both as {key}=... and in "
                "--kwargs-json: give it once"
            )
        keywords[key] = value
    return keywords


def tasks_list(engine: Engine, args: argparse.Namespace) -> None:
    service = engine.task_service
    filters = {
        "status": args.status,
        "queue": args.queue,
        "task_name": args.name,
        "text": args.text,
    }
    records = service.list_tasks(**filters, limit=args.limit, offset=args.offset)
    total = service.count_tasks(**filters)
    if args.json:
        print_json(
            {
                "total": total,
                "offset": args.offset,
                "limit": args.limit,
                "tasks": [record.to_dict() for record in records],
            }
        )
        return
    if not records:
        if total:
            print(f"no tasks at offset {args.offset}: {total} match in all")
        else:
            print("no tasks match")
        return
    headers = (
        "ID", "NAME", "QUEUE", "STATUS", "PRIORITY", "CREATED", "DURATION",
        "ARGUMENTS", "RESULT",
    )  # fmt: skip
    # Long values are cut with their size; `tasks show` prints them whole.
    rows = [
        [
            record.task_id,
            record.task_name,
            record.queue.value,
            record.status.value,
            str(record.priority),
            format_time(record.created_at),
            format_seconds(record.duration_seconds),
            json_preview(arguments_value(record)),
            "-" if record.result is None else json_preview(record.result),
        ]
        for record in records
    ]
    print(format_table(headers, rows))
    first = args.offset + 1
    print(f"tasks {first}-{args.offset + len(records)} of {total}")


def tasks_show(engine: Engine, args: argparse.Namespace) -> None:
    record = engine.task_service.get_status(args.task_id)
    if args.json:
        print_json(record.to_dict())
    else:
        print_record(record)


def tasks_submit(engine: Engine, args: argparse.Namespace) -> None:
    positional = parse_json_option("--args-json", args.args_json, list)
    keywords = parse_task_keywords(args.kwargs_json, args.assignments)
    task_id = engine.task_service.submit_as_operator(
        args.task_name,
        args=positional,
        kwargs=keywords,
        priority=args.priority,
        queue=args.queue,
        countdown=args.countdown,
        expires_in=args.expires_in,
    )
    if args.json:
        print_json({"task_id": task_id})
    else:
        print(task_id)


def tasks_cancel(engine: Engine, args: argparse.Namespace) -> None:
    record = engine.task_service.cancel(args.task_id)
    if args.json:
        print_json(record.to_dict())
    elif record.status is TaskStatus.CANCELLED:
        print(f"task {record.task_id} cancelled")
    else:
        print(
            f"task {record.task_id} is running: cancel requested, it stops at its "
            "next cancel check"
        )


def tasks_retry(engine: Engine, args: argparse.Namespace) -> None:
    new_id = engine.task_service.retry(args.task_id)
    if args.json:
        print_json({"task_id": new_id, "retry_of": args.task_id})
    else:
        print(new_id)


def tasks_approve(engine: Engine, args: argparse.Namespace) -> None:
    approver = engine.config.operator_name if args.approver is None else args.approver
    record = engine.task_service.approve(args.task_id, approver, args.reason)
    if args.json:
        print_json(record.to_dict())
    else:
        print(
            f"task {record.task_id} approved by {approver}: now {record.status.value}"
        )


def tasks_reject(engine: Engine, args: argparse.Namespace) -> None:
    approver = engine.config.operator_name if args.approver is None else args.approver
    record = engine.task_service.reject(args.task_id, approver, args.reason)
    if args.json:
        print_json(record.to_dict())
    else:
        print(f"task {record.task_id} rejected by {approver}")


def tasks_stats(engine: Engine, args: argparse.Namespace) -> None:
    stats = engine.task_service.queue_stats()
    if args.json:
        print_json({q.value: stats[q].to_dict() for q in TaskQueue if q in stats})
        return
    rows = [stats_row(stats[q]) for q in TaskQueue if q in stats]
    print(format_table(STATS_HEADERS, rows))


def tasks_registered(engine: Engine, args: argparse.Namespace) -> None:
    tasks = engine.task_service.registered_tasks()
    if args.json:
        print_json(tasks)
        return
    headers = ("NAME", "QUEUE", "PRIORITY", "RETRIES", "APPROVAL", "SIGNATURE")
    rows = [
        [
            task["name"],
            task["queue"],
            str(task["priority"]),
            str(task["max_retries"]),
            "required" if task["requires_governance"] else "-",
            task["signature"],
        ]
        for task in tasks
    ]
    print(format_table(headers, rows))


def tasks_cleanup(engine: Engine, args: argparse.Namespace) -> None:
    days = (
        engine.config.retention_days
        if args.older_than_days is None
        else args.older_than_days
    )
    deleted = engine.task_service.cleanup(older_than_days=days)
    if args.json:
        print_json({"deleted": deleted, "older_than_days": days})
    else:
        print(f"deleted {deleted} finished tasks older than {days:g} days")


def run_engine_command(args: argparse.Namespace) -> int:
    """Import the ``--tasks`` modules, open the engine and run the action on it."""
    import_task_modules(getattr(args, "tasks", None) or [])
    config = load_settings(args)
    with open_cli_engine(config) as engine:
        args.action_handler(engine, args)
    return 0


# --- parser ------------------------------------------------------------------


def _add_tasks_option(parser: argparse.ArgumentParser, purpose: str) -> None:
    parser.add_argument(
        "--tasks",
        nargs="+",
        action="extend",
        metavar="MODULE",
        help=f"import these modules first (dotted names), {purpose}; "
        "write --tasks=MODULE when positional arguments follow",
    )


def _add_action(
    actions: Any,
    name: str,
    handler: Callable[[Engine, argparse.Namespace], None],
    help_text: str,
) -> argparse.ArgumentParser:
    description = help_text[0].upper() + help_text[1:] + "."
    parser = actions.add_parser(name, help=help_text, description=description)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout"
    )
    parser.set_defaults(action_handler=handler)
    return parser


def _add_worker_parser(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run workers in the foreground until SIGINT or SIGTERM",
        description="Run worker threads in the foreground, for a headless machine "
        "or a second machine on a shared Redis. SIGINT or SIGTERM stops them "
        "after the running tasks finish; a second signal exits at once.",
    )
    _add_tasks_option(worker, "so their tasks can run")
    worker.add_argument(
        "--queues",
        metavar="QUEUE,...",
        help=f"queues to work on, separated by commas (default: all of {_QUEUE_NAMES})",
    )
    worker.add_argument(
        "--workers",
        nargs="+",
        action="extend",
        metavar="QUEUE=N",
        help="worker threads per queue, such as default=4; "
        "queues left out use the configured count",
    )
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for running tasks after a stop signal "
        f"(default: {DEFAULT_SHUTDOWN_TIMEOUT:g})",
    )
    worker.set_defaults(run=run_worker, default_level=logging.INFO)


def _add_tasks_parser(commands: Any) -> None:
    tasks = commands.add_parser(
        "tasks",
        help="list, submit, cancel, retry, approve and reject tasks; queue stats",
        description="Work with the task ledger of the backend.",
    )
    tasks.set_defaults(run=run_engine_command, default_level=logging.WARNING)
    actions = tasks.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = _add_action(actions, "list", tasks_list, "list tasks, newest first")
    listing.add_argument("--status", help=f"only this status: {_STATUS_NAMES}")
    listing.add_argument("--queue", help=f"only this queue: {_QUEUE_NAMES}")
    listing.add_argument("--name", help="only tasks of this task name")
    listing.add_argument(
        "--text",
        help="match an id by prefix, or a task name or error message by substring",
    )
    listing.add_argument(
        "--limit", type=int, default=50, help="page size, 1 to 1000 (default: 50)"
    )
    listing.add_argument(
        "--offset", type=int, default=0, help="tasks to skip (default: 0)"
    )
    _add_tasks_option(listing, "to register their tasks")

    show = _add_action(actions, "show", tasks_show, "show every field of one task")
    show.add_argument("task_id", metavar="ID")

    submit = _add_action(actions, "submit", tasks_submit, "submit a task by name")
    submit.add_argument("task_name", metavar="NAME", help="a registered task name")
    submit.add_argument(
        "assignments",
        nargs="*",
        metavar="KEY=VALUE",
        help="keyword arguments; a VALUE that is valid JSON (7, true, null, [1, 2], "
        '"7") is decoded, any other VALUE is a string',
    )
    submit.add_argument(
        "--args-json", metavar="JSON", help="positional arguments as a JSON list"
    )
    submit.add_argument(
        "--kwargs-json", metavar="JSON", help="keyword arguments as a JSON object"
    )
    submit.add_argument(
        "--priority",
        type=int,
        help="0 (runs first) to 9; default: the task's priority",
    )
    submit.add_argument(
        "--countdown",
        type=float,
        metavar="SECONDS",
        help="wait before the task may run",
    )
    submit.add_argument(
        "--queue", help=f"run on this queue instead of the task's own: {_QUEUE_NAMES}"
    )
    submit.add_argument(
        "--expires-in",
        type=float,
        metavar="SECONDS",
        help="seconds after the submit (or after the countdown) past which the "
        "task no longer starts and ends as expired",
    )
    _add_tasks_option(submit, "so NAME and its arguments can be checked")

    cancel = _add_action(
        actions, "cancel", tasks_cancel, "cancel a waiting or running task"
    )
    cancel.add_argument("task_id", metavar="ID")

    retry = _add_action(
        actions,
        "retry",
        tasks_retry,
        "submit a finished task again and print the new id",
    )
    retry.add_argument("task_id", metavar="ID")
    _add_tasks_option(retry, "to register the task being retried")

    for name, handler, verb in (
        ("approve", tasks_approve, "approve"),
        ("reject", tasks_reject, "reject"),
    ):
        decision = _add_action(
            actions, name, handler, f"{verb} a task that is awaiting approval"
        )
        decision.add_argument("task_id", metavar="ID")
        decision.add_argument(
            "--approver",
            help="name recorded for the decision (default: operator from the "
            "configuration, else the OS user)",
        )
        decision.add_argument(
            "--reason",
            required=name == "reject",
            help="why; required for reject",
        )

    _add_action(
        actions, "stats", tasks_stats, "show per-queue counts, rates and workers"
    )

    registered = _add_action(
        actions, "registered", tasks_registered, "list the registered task names"
    )
    _add_tasks_option(registered, "to list their tasks too")

    cleanup = _add_action(
        actions, "cleanup", tasks_cleanup, "delete finished tasks older than N days"
    )
    cleanup.add_argument(
        "--older-than-days",
        type=float,
        metavar="N",
        help="age in days (default: retention_days of the configuration)",
    )


def run_bench_command(args: argparse.Namespace) -> int:
    # Imported here: the bench pulls in Huey's consumer, which other commands skip.
    from .bench import bench_main

    return bench_main(args)


def _add_bench_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure the engine, the ledger and the window next to plain Huey",
        description="Measure throughput and latencies of the engine next to plain "
        "Huey, ledger queries and the window, on temporary SQLite files and on "
        "Redis, and compare them with the targets. Without --redis-url, a "
        "redis-server from PATH is started on a free 127.0.0.1 port for the run.",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes, under two minutes in all (default: the full sizes)",
    )
    bench.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout"
    )
    bench.add_argument(
        "--backend-kind",
        choices=("sqlite", "redis", "both"),
        default="both",
        help="the backends to measure (default: both)",
    )
    bench.add_argument(
        "--redis-url",
        metavar="URL",
        help="a Redis database to use instead of a redis-server of its own; "
        "the bench writes and deletes keys of fresh namespaces there",
    )
    bench.add_argument(
        "--sections",
        metavar="NAME,...",
        help="only these sections, separated by commas: drain, end_to_end, "
        "start_latency, governance, ledger, window (default: all)",
    )
    # Sizes for the test that keeps the command working; hidden from --help.
    bench.add_argument(
        "--sizes", choices=("full", "quick", "tiny"), help=argparse.SUPPRESS
    )
    bench.set_defaults(run=run_bench_command, default_level=logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Control room for Huey background tasks. Without a command, open "
        "the window with the workers of every queue running inside it.",
    )
    parser.add_argument(
        "--backend",
        metavar="URL",
        help="sqlite:///PATH or redis://HOST:PORT/DB; overrides $CHENU_BACKEND "
        "and the configuration file",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $CHENU_CONFIG, else config.toml in "
        "the user config dir)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more; each -v lowers the level one step from INFO for worker "
        "and WARNING for tasks and schedules",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="without a command: run the workers without the window",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="register example tasks and submit a mix of them, to see the "
        "dashboard at work",
    )
    parser.add_argument(
        "--minimized",
        action="store_true",
        help="without a command: start with the window minimized",
    )
    parser.add_argument(
        "--tasks",
        dest="window_tasks",
        nargs="+",
        action="extend",
        metavar="MODULE",
        help="without a command: import these modules first (dotted names), so "
        "the workers of the window or of --headless can run their tasks",
    )
    parser.set_defaults(
        run=run_desktop, default_level=logging.INFO, backend_display=None
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_worker_parser(commands)
    _add_tasks_parser(commands)
    _add_bench_parser(commands)
    # Imported here because cli_schedules builds on the helpers of this module.
    from .cli_audit import add_audit_parser
    from .cli_schedules import add_schedules_parser

    add_schedules_parser(commands)
    add_audit_parser(commands)
    from .cli_desktop import add_desktop_entry_parser

    add_desktop_entry_parser(commands)
    return parser


# --- entry point -------------------------------------------------------------


@contextlib.contextmanager
def stderr_logging(level: int) -> Iterator[None]:
    """Send log records at `level` and above to stderr, for the time of the block.

    The handler sits on the root logger, so the ``chenu`` and ``huey`` loggers
    and those of user task modules all reach it. The previous state is put
    back afterwards, so calling `main` in-process leaves logging as it was.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    named = [logging.getLogger("chenu"), logging.getLogger("huey")]
    previous = [root.level, *(log.level for log in named)]
    root.addHandler(handler)
    root.setLevel(level)
    for log in named:
        log.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous[0])
        for log, old_level in zip(named, previous[1:]):
            log.setLevel(old_level)


def parse_arguments(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """Parse `argv`, letting commands that take KEY=VALUE take it after options too.

    argparse fills a ``nargs="*"`` positional once, so KEY=VALUE items after
    an option such as ``--priority 2`` arrive as unrecognized arguments.
    They join ``args.assignments`` of ``tasks submit``, ``schedules add`` and
    ``schedules update``.
    """
    args, extras = parser.parse_known_args(argv)
    if args.command is not None and args.window_tasks:
        parser.error(
            f"--tasks before the command {args.command!r} applies to the window "
            f"only: pass it after the command instead, as in {PROG} worker "
            "--tasks=MODULE"
        )
    if not extras:
        return args
    takes_assignments = isinstance(getattr(args, "assignments", None), list)
    if takes_assignments and all(
        "=" in item and not item.startswith("-") for item in extras
    ):
        args.assignments.extend(extras)
        return args
    parser.error(f"unrecognized arguments: {' '.join(extras)}")


def print_error(message: str) -> None:
    print("error: " + " ".join(message.split("\n")), file=sys.stderr)


def _ensure_standard_streams() -> None:
    """Give a windowed launcher, which has no console on Windows, somewhere to print.

    Without a console, `sys.stdout` and `sys.stderr` are None and the first
    print would raise; the log file still records what matters.
    """
    if sys.stdout is None or sys.stderr is None:
        sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives with the process)
        sys.stdout = sys.stdout or sink
        sys.stderr = sys.stderr or sink


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    The status is 0 on success, 1 when the backend is unreachable, and 2 on
    bad input and on argparse's usage errors.
    """
    _ensure_standard_streams()
    parser = build_parser()
    try:
        args = parse_arguments(parser, argv)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has printed its message.
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    level = max(logging.DEBUG, args.default_level - 10 * args.verbose)
    with stderr_logging(level):
        try:
            return args.run(args)
        except UnknownTaskError as exc:
            logger.debug("command failed", exc_info=True)
            print_error(
                f"{exc} (pass --tasks MODULE to import the module that registers it)"
            )
            return EXIT_BAD_INPUT
        except ChenuError as exc:
            logger.debug("command failed", exc_info=True)
            print_error(str(exc))
            return EXIT_BAD_INPUT
        except AuditWriteError as exc:
            # The action took effect, which the message states with the backend.
            logger.debug("command failed", exc_info=True)
            print_error(str(exc))
            return EXIT_UNAVAILABLE
        except BACKEND_ERRORS as exc:
            logger.debug("command failed", exc_info=True)
            display = args.backend_display or "the configured backend"
            message = str(exc) or type(exc).__name__
            if display not in message:
                message = f"backend {display} is unavailable: {message}"
            print_error(message)
            return EXIT_UNAVAILABLE
        except KeyboardInterrupt:
            print_error("interrupted")
            return 128 + signal.SIGINT
