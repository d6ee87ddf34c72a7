"""The benchmark behind ``chenu-desktop bench``: the engine next to plain Huey.

Every measurement opens its own engine on a fresh temporary SQLite file or a
fresh Redis namespace, so one figure does not inherit the records of another.
Figures are wall-clock times on whatever else the machine is running.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import itertools
import json
import logging
import multiprocessing
import operator
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import huey
import redis
from redis.sentinel import MasterNotFoundError
from huey import PriorityRedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from .backend import mask_url, parse_backend, redis_client, redis_pool
from .redis_server import LocalRedisServer, RedisServerError
from .config import DEFAULT_WORKERS, Config
from .engine import Engine
from .errors import BackendUnavailableError, ChenuError
from .models import TaskQueue, TaskRecord, TaskStatus
from .registry import TaskRegistry, background_task, default_registry

logger = logging.getLogger("chenu.bench")

#: Worker threads of the queue under test in the throughput figures, for both
#: the engine and plain Huey.
THROUGHPUT_WORKERS = 2

#: Targets the figures are compared with: (section, figure, comparison, bound).
#: A target applies to each backend that reports the figure.
TARGETS: list[tuple[str, str, str, float]] = [
    ("drain", "ratio", ">=", 0.90),
    # Only on Redis, and only with Celery installed: the engine's rate over Celery's.
    ("end_to_end", "celery_ratio", ">", 1.0),
    ("start_latency", "p50_ms", "<", 5.0),
    ("start_latency", "p99_ms", "<", 20.0),
    ("start_latency", "idle_cpu_percent", "<", 1.0),
    ("governance", "p99_ms", "<", 50.0),
    ("ledger", "max_page_ms", "<", 20.0),
    ("ledger", "queue_stats_ms", "<", 5.0),
    ("window", "rows_painted_ms", "<", 1000.0),
    ("window", "lag_p99_ms", "<", 30.0),
    ("window", "rss_mb", "<", 400.0),
]


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    drain_tasks: int
    e2e_tasks: int
    start_tasks: int
    start_rate: float
    idle_seconds: float
    governance_waiting: int
    governance_probes: int
    governance_rate: float
    ledger_records: int
    window_records: int
    window_seconds: float
    window_rate: float
    #: Rounds of the throughput sections: in each, the engine, plain Huey and,
    #: on Redis, Celery run once.
    rounds: int


SIZES = {
    "full": Sizes(
        drain_tasks=5000,
        e2e_tasks=5000,
        start_tasks=500,
        start_rate=100.0,
        idle_seconds=5.0,
        governance_waiting=10_000,
        governance_probes=200,
        governance_rate=20.0,
        ledger_records=1_000_000,
        window_records=100_000,
        window_seconds=30.0,
        window_rate=2000.0,
        rounds=3,
    ),
    "quick": Sizes(
        drain_tasks=400,
        e2e_tasks=400,
        start_tasks=100,
        start_rate=100.0,
        idle_seconds=1.0,
        governance_waiting=1000,
        governance_probes=40,
        governance_rate=20.0,
        ledger_records=20_000,
        window_records=5000,
        window_seconds=3.0,
        window_rate=2000.0,
        rounds=1,
    ),
    # Only for the test that keeps the command working: figures are noise.
    "tiny": Sizes(
        drain_tasks=20,
        e2e_tasks=20,
        start_tasks=10,
        start_rate=100.0,
        idle_seconds=0.3,
        governance_waiting=20,
        governance_probes=5,
        governance_rate=50.0,
        ledger_records=400,
        window_records=200,
        window_seconds=0.5,
        window_rate=500.0,
        rounds=1,
    ),
}


# --- tasks -------------------------------------------------------------------

#: The bench's own tasks, kept out of the default registry of the process.
bench_registry = TaskRegistry()
_hold_release = threading.Event()
#: Maximum time a hold task waits, so a failed run cannot leave threads forever.
_HOLD_TIMEOUT = 600.0


def engine_registry() -> TaskRegistry:
    """Return the bench's tasks and the built-in ones, which default schedules use."""
    from . import builtin_tasks

    registry = TaskRegistry()
    for definition in default_registry.definitions():
        if definition.func.__module__ == builtin_tasks.__name__:
            registry.add(definition)
    for definition in bench_registry.definitions():
        registry.add(definition)
    return registry


#: Runs of `bench_noop` in this process; list.append is atomic under the GIL.
_noop_runs: list[int] = []


@background_task(name="bench_noop", registry=bench_registry)
def bench_noop() -> None:
    """Do nothing but count the run: the cost measured is the engine's own."""
    _noop_runs.append(1)


@background_task(name="bench_hold", registry=bench_registry)
def bench_hold() -> None:
    """Keep a worker busy until the governance measurement releases it."""
    _hold_release.wait(_HOLD_TIMEOUT)


@background_task(
    name="bench_governance_noop", queue=TaskQueue.GOVERNANCE, registry=bench_registry
)
def bench_governance_noop() -> None:
    """Do nothing on the governance queue, which needs no approval here."""


# --- statistics and machine --------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `values` (fraction 0 to 1)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_figures(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(seconds, 0.50) * 1000,
        "p99_ms": percentile(seconds, 0.99) * 1000,
        "max_ms": max(seconds) * 1000,
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(redis_version: str | None) -> dict[str, Any]:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    try:
        celery_version: str | None = importlib.metadata.version("celery")
    except importlib.metadata.PackageNotFoundError:
        celery_version = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "huey": huey.__version__,
        "celery": celery_version,
        "redis_server": redis_version,
        "load_average_at_start": load,
    }


# --- backends ----------------------------------------------------------------


class BenchError(ChenuError):
    """The bench cannot run as requested: a missing tool, an option or a stall."""


@dataclasses.dataclass
class Backend:
    """The storage of one backend kind that the measurements write to."""

    kind: str
    workdir: Path
    redis_url: str | None = None

    def new_url(self) -> tuple[str, str]:
        """Return a fresh engine URL and namespace; each call gets empty storage."""
        namespace = "bench" + uuid.uuid4().hex[:10]
        if self.kind == "sqlite":
            return (
                f"sqlite://{(self.workdir / (namespace + '.db')).as_posix()}",
                namespace,
            )
        assert self.redis_url is not None
        return self.redis_url, namespace

    def discard(self, url: str, namespace: str) -> None:
        """Delete what one measurement stored."""
        if self.kind == "sqlite":
            path = Path(url[len("sqlite://") :])
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            return
        client = redis_client(parse_backend(url))
        try:
            for pattern in (f"chenu:{namespace}:*", f"huey.*.{namespace}*"):
                batch: list[bytes] = []
                for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        client.unlink(*batch)
                        batch = []
                if batch:
                    client.unlink(*batch)
        finally:
            client.close()


# --- engines and plain Huey ----------------------------------------------------


def only_queue(queue: TaskQueue, workers: int) -> dict[TaskQueue, int]:
    """Return worker counts with `workers` threads on `queue` and none elsewhere."""
    return {q: (workers if q is queue else 0) for q in TaskQueue}


def open_bench_engine(
    url: str, namespace: str, workers: dict[TaskQueue, int]
) -> Engine:
    """Open an engine with the bench's tasks; its workers are not started.

    Every other setting is the default, so idle CPU and latencies are those
    of the shipped configuration.
    """
    config = Config(backend=url, namespace=namespace, workers=dict(workers))
    return Engine(config, engine_registry())


@contextlib.contextmanager
def bench_engine(backend: Backend, workers: dict[TaskQueue, int]) -> Iterator[Engine]:
    """Open an engine on empty storage; close it and delete its data afterwards."""
    url, namespace = backend.new_url()
    engine = open_bench_engine(url, namespace, workers)
    try:
        yield engine
    finally:
        _hold_release.set()
        engine.close()
        backend.discard(url, namespace)


def status_count(engine: Engine, queue: TaskQueue, status: TaskStatus) -> int:
    """Return a queue's count of one status from the ledger's counters."""
    return engine.ledger.status_counts().get(queue, {}).get(status, 0)


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.005
) -> None:
    """Poll `condition` every `interval` s; raise BenchError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_success(
    engine: Engine, queue: TaskQueue, count: int, timeout: float, runs: int = 0
) -> None:
    """Wait until the ledger's counters show `count` successes on `queue`.

    With `runs`, the wait first watches this process's count of `bench_noop`
    runs reach it, so the polls of the ledger do not take CPU from the
    workers while they drain, as plain Huey's wait takes none.
    """
    deadline = time.monotonic() + timeout
    if runs:
        wait_for(lambda: len(_noop_runs) >= runs, timeout, f"{runs} no-op runs")
    wait_for(
        lambda: status_count(engine, queue, TaskStatus.SUCCESS) >= count,
        max(0.0, deadline - time.monotonic()),
        f"{count} successful tasks on queue {queue.value}",
    )


def _timeout_for(tasks: int) -> float:
    """Return a deadline generous enough for a slow machine: 100 tasks/s plus 30 s."""
    return 30.0 + tasks / 100.0


class _EmbeddedConsumer(Consumer):
    """Huey's consumer without its SIGINT/SIGTERM/SIGHUP handlers.

    Huey's `Consumer.start` installs them, which would take Ctrl+C away from
    the bench; its workers, scheduler and stop are unchanged.
    """

    def _set_signal_handlers(self) -> None:
        pass


def plain_huey(backend: Backend) -> tuple[Huey, Callable[[], None]]:
    """Create a plain Huey with Huey's defaults on fresh storage; return it and a cleanup."""
    name = "bench_plain_" + uuid.uuid4().hex[:10]
    if backend.kind == "sqlite":
        path = backend.workdir / (name + ".db")
        instance: Huey = SqliteHuey(name, filename=str(path))

        def discard() -> None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)

        return instance, discard
    assert backend.redis_url is not None
    instance = PriorityRedisHuey(
        name, connection_pool=redis_pool(parse_backend(backend.redis_url))
    )

    def discard_redis() -> None:
        instance.storage.flush_all()
        instance.storage.pool.disconnect()

    return instance, discard_redis


def plain_huey_run(backend: Backend, tasks: int, submit_while_running: bool) -> float:
    """Return the tasks/s of plain Huey with 2 thread workers for `tasks` no-ops.

    Without `submit_while_running`, every task is enqueued before the consumer
    starts, and the time runs from its start. With it, the consumer runs first
    and the time runs from the first enqueue.
    """
    instance, discard = plain_huey(backend)
    done: list[int] = []

    @instance.task()
    def plain_noop() -> None:
        done.append(1)  # list.append is atomic under the GIL

    consumer = _EmbeddedConsumer(
        instance,
        workers=THROUGHPUT_WORKERS,
        worker_type="thread",
        periodic=False,
        check_worker_health=False,
    )
    try:
        if submit_while_running:
            consumer.start()
            start = time.perf_counter()
            for _ in range(tasks):
                plain_noop()
        else:
            for _ in range(tasks):
                plain_noop()
            start = time.perf_counter()
            consumer.start()
        wait_for(lambda: len(done) >= tasks, _timeout_for(tasks), "plain Huey tasks")
        elapsed = time.perf_counter() - start
    finally:
        consumer.stop(graceful=True)
        discard()
    return tasks / elapsed


# --- measurements ------------------------------------------------------------


def engine_drain_rate(backend: Backend, tasks: int) -> float:
    """Return the engine's tasks/s for `tasks` no-ops submitted before its workers start."""
    with bench_engine(
        backend, only_queue(TaskQueue.DEFAULT, THROUGHPUT_WORKERS)
    ) as engine:
        for _ in range(tasks):
            engine.task_service.submit("bench_noop")
        runs = len(_noop_runs) + tasks
        start = time.perf_counter()
        engine.start_workers(scheduler=False)
        wait_success(engine, TaskQueue.DEFAULT, tasks, _timeout_for(tasks), runs)
        return tasks / (time.perf_counter() - start)


def engine_end_to_end(backend: Backend, tasks: int) -> tuple[float, list[float]]:
    """Return the engine's tasks/s and submit latencies, submitting while it runs."""
    latencies: list[float] = []
    with bench_engine(
        backend, only_queue(TaskQueue.DEFAULT, THROUGHPUT_WORKERS)
    ) as engine:
        engine.start_workers(scheduler=False)
        submit = engine.task_service.submit
        runs = len(_noop_runs) + tasks
        start = time.perf_counter()
        for _ in range(tasks):
            before = time.perf_counter()
            submit("bench_noop")
            latencies.append(time.perf_counter() - before)
        wait_success(engine, TaskQueue.DEFAULT, tasks, _timeout_for(tasks), runs)
        return tasks / (time.perf_counter() - start), latencies


def throughput_figures(
    tasks: int, engine_rates: list[float], plain_rates: list[float]
) -> dict[str, float]:
    """Return the median rates of the rounds and their ratio."""
    engine_rate = statistics.median(engine_rates)
    plain_rate = statistics.median(plain_rates)
    return {
        "tasks": tasks,
        "rounds": len(engine_rates),
        "engine_tasks_per_s": engine_rate,
        "plain_huey_tasks_per_s": plain_rate,
        "ratio": engine_rate / plain_rate,
    }


def measure_drain(backend: Backend, sizes: Sizes) -> dict[str, float]:
    """Drain no-op tasks submitted while no worker runs, on the engine and plain Huey.

    The two take turns for `Sizes.rounds` rounds, and each rate is the median
    of its rounds, so that a burst of other work on the machine moves one
    round rather than the figure.
    """
    engine_rates: list[float] = []
    plain_rates: list[float] = []
    for _ in range(sizes.rounds):
        engine_rates.append(engine_drain_rate(backend, sizes.drain_tasks))
        plain_rates.append(
            plain_huey_run(backend, sizes.drain_tasks, submit_while_running=False)
        )
    return throughput_figures(sizes.drain_tasks, engine_rates, plain_rates)


def measure_end_to_end(backend: Backend, sizes: Sizes) -> dict[str, float]:
    """Submit no-op tasks from this thread while the workers run them.

    The engine, plain Huey and, on Redis, Celery take turns as in
    `measure_drain`; the submit latencies are those of every round.
    """
    tasks = sizes.e2e_tasks
    engine_rates: list[float] = []
    plain_rates: list[float] = []
    celery_rates: list[float] = []
    latencies: list[float] = []
    celery_latencies: list[float] = []
    compare_celery = backend.kind == "redis" and celery_available(backend)
    for _ in range(sizes.rounds):
        rate, round_latencies = engine_end_to_end(backend, tasks)
        engine_rates.append(rate)
        latencies += round_latencies
        plain_rates.append(plain_huey_run(backend, tasks, submit_while_running=True))
        if compare_celery:
            celery = celery_round(backend, tasks)
            if celery is None:
                compare_celery = False
                celery_rates.clear()
            else:
                celery_rates.append(celery[0])
                celery_latencies += celery[1]
    figures = throughput_figures(tasks, engine_rates, plain_rates)
    submit_figures = latency_figures(latencies)
    figures["submit_p50_ms"] = submit_figures["p50_ms"]
    figures["submit_p99_ms"] = submit_figures["p99_ms"]
    if celery_rates:
        celery_rate = statistics.median(celery_rates)
        celery_submits = latency_figures(celery_latencies)
        figures["celery_tasks_per_s"] = celery_rate
        figures["celery_ratio"] = figures["engine_tasks_per_s"] / celery_rate
        figures["celery_submit_p50_ms"] = celery_submits["p50_ms"]
        figures["celery_submit_p99_ms"] = celery_submits["p99_ms"]
    return figures


def celery_available(backend: Backend) -> bool:
    """Return whether Celery can be compared on this backend; log why not."""
    try:
        from . import bench_celery  # noqa: F401
    except ImportError:
        logger.warning(
            "Celery is not installed, so the end-to-end figure is not compared "
            "with it: pip install 'chenu-desktop[bench]'"
        )
        return False
    assert backend.redis_url is not None
    if not backend.redis_url.startswith(("redis://", "rediss://", "unix://")):
        logger.warning(
            "Celery is not compared on %s: its broker needs a redis://, "
            "rediss:// or unix:// URL",
            mask_url(backend.redis_url),
        )
        return False
    return True


def celery_round(backend: Backend, tasks: int) -> tuple[float, list[float]] | None:
    """Return Celery's tasks/s and submit latencies, or None if its worker failed."""
    from .bench_celery import CeleryError, celery_end_to_end

    assert backend.redis_url is not None
    try:
        return celery_end_to_end(
            backend.redis_url, THROUGHPUT_WORKERS, tasks, backend.workdir
        )
    except CeleryError as exc:
        # The other figures of the run still stand.
        logger.error("the Celery comparison failed, so it is left out: %s", exc)
        return None


def submit_paced(engine: Engine, task_name: str, count: int, rate: float) -> list[str]:
    """Submit `count` tasks at `rate` per second on a fixed schedule; return their ids."""
    ids: list[str] = []
    start = time.perf_counter()
    for index in range(count):
        pause = start + index / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        ids.append(engine.task_service.submit(task_name))
    return ids


def start_latencies(engine: Engine, task_ids: Sequence[str]) -> list[float]:
    """Return started_at - created_at of each task, in seconds."""
    latencies = []
    for task_id in task_ids:
        record = engine.ledger.get(task_id)
        if record is None or record.started_at is None:
            raise BenchError(f"task {task_id} has no start time in the ledger")
        latencies.append(record.started_at - record.created_at)
    return latencies


def process_cpu_seconds() -> float:
    """Return the CPU time of every thread of this process, in seconds.

    `time.process_time` reads the process CPU clock in nanoseconds, where
    `os.times` counts in 10 ms steps, too coarse for an idle process.
    """
    return time.process_time()


def measure_start_latency(backend: Backend, sizes: Sizes) -> dict[str, float]:
    """Measure idle CPU, then submit at a fixed rate into idle workers.

    The engine runs every queue with the default worker counts and the
    scheduler, as the window does; the tasks go to the default queue.
    """
    with bench_engine(backend, DEFAULT_WORKERS) as engine:
        engine.start_workers()
        # Let the workers reach their idle state: SQLite workers back off.
        time.sleep(min(2.0, sizes.idle_seconds))
        cpu_before = process_cpu_seconds()
        wall_before = time.perf_counter()
        time.sleep(sizes.idle_seconds)
        idle_cpu = (process_cpu_seconds() - cpu_before) / (
            time.perf_counter() - wall_before
        )
        ids = submit_paced(engine, "bench_noop", sizes.start_tasks, sizes.start_rate)
        wait_success(engine, TaskQueue.DEFAULT, len(ids), _timeout_for(len(ids)))
        engine.flush()
        figures = latency_figures(start_latencies(engine, ids))
    return {
        "tasks": sizes.start_tasks,
        "rate_per_s": sizes.start_rate,
        **figures,
        "idle_cpu_percent": idle_cpu * 100,
    }


def measure_governance(backend: Backend, sizes: Sizes) -> dict[str, float]:
    """Time governance starts while every worker of the other queues is busy."""
    others = [q for q in TaskQueue if q is not TaskQueue.GOVERNANCE]
    busy_workers = sum(DEFAULT_WORKERS[q] for q in others)
    _hold_release.clear()
    with bench_engine(backend, DEFAULT_WORKERS) as engine:
        submit = engine.task_service.submit
        start = time.perf_counter()
        for index in range(busy_workers + sizes.governance_waiting):
            submit("bench_hold", queue=others[index % len(others)])
        fill_seconds = time.perf_counter() - start
        engine.start_workers(scheduler=False)
        wait_for(
            lambda: (
                sum(status_count(engine, q, TaskStatus.RUNNING) for q in others)
                >= busy_workers
            ),
            60.0,
            f"{busy_workers} busy workers",
        )
        ids = submit_paced(
            engine,
            "bench_governance_noop",
            sizes.governance_probes,
            sizes.governance_rate,
        )
        wait_success(engine, TaskQueue.GOVERNANCE, len(ids), _timeout_for(len(ids)))
        engine.flush()
        figures = latency_figures(start_latencies(engine, ids))
        waiting = sum(status_count(engine, q, TaskStatus.PENDING) for q in others)
        running = sum(status_count(engine, q, TaskStatus.RUNNING) for q in others)
    return {
        "probes": sizes.governance_probes,
        "busy_workers": running,
        "waiting_tasks": waiting,
        "fill_seconds": fill_seconds,
        **figures,
    }


# --- ledger ------------------------------------------------------------------

_TASK_NAMES = [
    "bench_" + word
    for word in (
        "report", "sync", "import", "export", "mail",
        "resize", "backup", "index", "audit", "billing",
    )
]  # fmt: skip
_ERRORS = [
    "TimeoutError: upstream {name} timed out after 30 s",
    "ConnectionError: connection to {name} refused",
    "ValueError: invalid row {row} in input",
]
#: The creation times of loaded records span this many days, newest now.
LEDGER_SPAN_DAYS = 60.0
_INSERT_BATCH = 2000


def make_records(
    count: int,
    now: float,
    first: int = 0,
    total: int | None = None,
    waiting: bool = True,
) -> Iterator[TaskRecord]:
    """Yield finished and waiting records, oldest first, created over 60 days.

    The records are numbers `first` to `first + count - 1` of `total` (default
    `count`), so several processes can each make one part of the same set.
    Without `waiting`, the pending share is cancelled instead: pending records
    inserted without a queue message look like a crash's leftovers, and a
    starting pool enqueues them again, which would add work to what is measured.
    """
    total = count if total is None else total
    rng = random.Random(first)
    queues = list(TaskQueue)
    span = LEDGER_SPAN_DAYS * 86400
    statuses = [
        TaskStatus.SUCCESS,
        TaskStatus.FAILURE,
        TaskStatus.PENDING,
        TaskStatus.CANCELLED,
    ]
    for index in range(first, first + count):
        created = now - span * (total - index) / total
        status = rng.choices(statuses, weights=(85, 10, 3, 2))[0]
        if not waiting and status is TaskStatus.PENDING:
            status = TaskStatus.CANCELLED
        name = rng.choice(_TASK_NAMES)
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            task_name=name,
            queue=queues[index % len(queues)],
            priority=6,
            status=status,
            created_at=created,
            updated_at=created,
            history=[[TaskStatus.PENDING.value, created]],
        )
        if status is not TaskStatus.PENDING:
            record.started_at = created + 0.005
            record.finished_at = created + rng.uniform(0.01, 2.0)
            record.updated_at = record.finished_at
            record.attempts = 1
            record.history.append([status.value, record.finished_at])
        if status is TaskStatus.FAILURE:
            template = rng.choice(_ERRORS)
            record.error = template.format(name=name, row=rng.randrange(100_000))
        yield record


def _batches(records: Iterator[TaskRecord], size: int) -> Iterator[list[TaskRecord]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def load_records(ledger: Any, backend_kind: str, records: Iterator[TaskRecord]) -> int:
    """Insert records straight into a ledger, the fastest way each backend offers.

    SQLite takes batches through `insert_many`. Redis runs the ledger's own
    insert script for each record, sent in pipelines of one batch each.
    Returns how many records were inserted.
    """
    from .ledger.redis_ledger import RedisLedger

    inserted = 0
    for batch in _batches(records, _INSERT_BATCH):
        if backend_kind == "sqlite":
            ledger.insert_many(batch)
        else:
            pipeline = ledger._client.pipeline(transaction=False)
            # A ledger over the pipeline queues each insert instead of sending it.
            queued = RedisLedger(pipeline, ledger._prefix.split(":")[1])
            for record in batch:
                queued.insert(record)
            pipeline.execute()
        inserted += len(batch)
    return inserted


#: Below this many records, loading Redis in one process is quicker than starting more.
_PARALLEL_LOAD_MIN = 50_000


def _load_redis_part(
    url: str,
    namespace: str,
    first: int,
    count: int,
    total: int,
    now: float,
    waiting: bool = True,
) -> int:
    from .ledger.redis_ledger import RedisLedger

    ledger = RedisLedger(redis_client(parse_backend(url)), namespace)
    try:
        records = make_records(count, now, first, total, waiting)
        return load_records(ledger, "redis", records)
    finally:
        ledger.close()


def load_ledger(
    backend: Backend, url: str, namespace: str, count: int, waiting: bool = True
) -> int:
    """Create the ledger of `url` and fill it with `count` records; return how many.

    Redis inserts are bound by the Python client (encoding and packing each
    command), so large loads run in one process per core. SQLite has a
    single writer and loads in this process.
    """
    from .backend import create_ledger

    now = time.time()
    ledger = create_ledger(parse_backend(url), namespace, 100_000)
    try:
        if backend.kind == "sqlite" or count < _PARALLEL_LOAD_MIN:
            records = make_records(count, now, waiting=waiting)
            return load_records(ledger, backend.kind, records)
    finally:
        ledger.close()
    processes = os.cpu_count() or 1
    part = -(-count // processes)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(
                _load_redis_part,
                url,
                namespace,
                first,
                min(part, count - first),
                count,
                now,
                waiting,
            )
            for first in range(0, count, part)
        ]
        return sum(future.result() for future in futures)


def _time_ms(call: Callable[[], Any], repeat: int = 5) -> tuple[float, float]:
    """Return the first and the median time of up to `repeat` calls, in ms.

    A first call that takes over a second is not repeated, so slow queries on
    a large ledger do not stretch the run. The median is then that one call.
    """
    times: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
        if times[0] > 1000:
            break
    return times[0], percentile(times, 0.5)


def time_sorted_pages(ledger: Any, figures: dict[str, float]) -> list[str]:
    """Time a first page in each sort key but creation, unfiltered and by status.

    Stores the figures as ``page_sort_<key>[_status]_ms`` and returns their
    labels.
    """
    from .models import TaskFilter, TaskSort

    labels = []
    for key in TaskSort:
        if key is TaskSort.CREATED:
            continue
        for suffix, task_filter in (
            ("", TaskFilter()),
            ("_status", TaskFilter(status=TaskStatus.FAILURE)),
        ):
            label = f"sort_{key.value}{suffix}"
            first, median = _time_ms(
                lambda f=task_filter, k=key: ledger.list_tasks(f, 50, 0, sort=k)
            )
            figures[f"page_{label}_ms"] = median
            figures[f"page_{label}_first_ms"] = first
            labels.append(label)
    return labels


def measure_ledger(backend: Backend, sizes: Sizes) -> dict[str, float]:
    """Load records, time one page per filter and sort key, queue_stats() and cleanup."""
    from .backend import create_ledger
    from .models import TaskFilter

    url, namespace = backend.new_url()
    start = time.perf_counter()
    count = load_ledger(backend, url, namespace, sizes.ledger_records)
    load_seconds = time.perf_counter() - start
    now = time.time()
    ledger = create_ledger(parse_backend(url), namespace, 100_000)
    try:
        middle = now - LEDGER_SPAN_DAYS * 86400 / 2
        filters = {
            "all": TaskFilter(),
            "status": TaskFilter(status=TaskStatus.FAILURE),
            "queue": TaskFilter(queue=TaskQueue.LOW),
            "name": TaskFilter(task_name="bench_backup"),
            "text_name": TaskFilter(text="backup"),
            "text_error": TaskFilter(text="timed out"),
            "text_id": TaskFilter(text="ab12"),
            "time_range": TaskFilter(
                created_after=middle - 3600, created_before=middle
            ),
            "status_and_queue": TaskFilter(
                status=TaskStatus.SUCCESS, queue=TaskQueue.HIGH
            ),
        }
        figures: dict[str, float] = {
            "records": count,
            "load_seconds": load_seconds,
            "load_records_per_s": count / load_seconds,
        }
        for label, task_filter in filters.items():
            first, median = _time_ms(lambda f=task_filter: ledger.list_tasks(f, 50, 0))
            figures[f"page_{label}_ms"] = median
            figures[f"page_{label}_first_ms"] = first
        labels = list(filters)
        labels += time_sorted_pages(ledger, figures)
        figures["max_page_ms"] = max(figures[f"page_{label}_ms"] for label in labels)

        def stats() -> None:
            moment = time.time()
            ledger.queue_stats(
                moment, ledger.list_workers(moment), ledger.paused_queues()
            )

        first, median = _time_ms(stats)
        figures["queue_stats_ms"] = median
        figures["queue_stats_first_ms"] = first

        # The same loop as TaskService.cleanup, on the older half of the records.
        start = time.perf_counter()
        deleted = 0
        while True:
            ids = ledger.delete_finished_before(middle, 1000)
            deleted += len(ids)
            if len(ids) < 1000:
                break
        figures["cleanup_ms"] = (time.perf_counter() - start) * 1000
        figures["cleanup_deleted"] = deleted
    finally:
        ledger.close()
        backend.discard(url, namespace)
    return figures


# --- the run -----------------------------------------------------------------

# --- window ------------------------------------------------------------------


def submit_at_rate(engine: Engine, rate: float, seconds: float) -> int:
    """Submit no-op tasks at `rate` per second for `seconds`; return how many."""
    submitted = 0
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return submitted
        due = int(rate * elapsed) - submitted
        for _ in range(due):
            engine.task_service.submit("bench_noop")
        submitted += max(0, due)
        time.sleep(0.005)


def measure_window(backend: Backend, sizes: Sizes) -> dict[str, float]:
    """Run the window in a child process while this process submits tasks.

    Qt is loaded in the child only. Its workers complete the tasks, as the
    workers inside the desktop window do.
    """
    url, namespace = backend.new_url()
    start = time.perf_counter()
    load_ledger(backend, url, namespace, sizes.window_records, waiting=False)
    load_seconds = time.perf_counter() - start
    command = [
        sys.executable,
        "-m",
        "chenu_desktop.bench_window",
        "--backend", url,
        "--namespace", namespace,
        "--records", str(sizes.window_records),
        "--seconds", str(sizes.window_seconds),
    ]  # fmt: skip
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    producer: Engine | None = None
    try:
        assert child.stdin is not None and child.stdout is not None
        ready = child.stdout.readline().strip()
        if ready != "ready":
            raise BenchError(
                f"the window process failed before its first paint (exit code "
                f"{child.wait()}, output {ready!r}): see its error output above"
            )
        # The producer runs no workers: the window's own workers run the tasks.
        producer = open_bench_engine(url, namespace, only_queue(TaskQueue.DEFAULT, 0))
        child.stdin.write("go\n")
        child.stdin.flush()
        submitted = submit_at_rate(producer, sizes.window_rate, sizes.window_seconds)
        line = child.stdout.readline()
        child.wait(timeout=120)
    finally:
        if producer is not None:
            producer.close()
        if child.poll() is None:
            child.kill()
            child.wait()
        backend.discard(url, namespace)
    if not line:
        raise BenchError(
            f"the window process ended without figures (exit code {child.returncode})"
        )
    figures: dict[str, float] = json.loads(line)
    figures["load_seconds"] = load_seconds
    figures["submit_rate_per_s"] = submitted / sizes.window_seconds
    return figures


SECTIONS: dict[str, Callable[[Backend, Sizes], dict[str, float]]] = {
    "drain": measure_drain,
    "end_to_end": measure_end_to_end,
    "start_latency": measure_start_latency,
    "governance": measure_governance,
    "ledger": measure_ledger,
    "window": measure_window,
}


#: Characters of a Redis error kept in a message.
_ERROR_CHARS = 200


def redis_server_version(url: str) -> str:
    """Return the version of the Redis server of `--redis-url`.

    Raises:
        BenchError: The URL is invalid or names no Redis server.
        BackendUnavailableError: The server did not respond.
    """
    try:
        spec = parse_backend(url)
    except ChenuError as exc:
        raise BenchError(f"invalid --redis-url: {exc}") from None
    if spec.kind != "redis":
        raise BenchError(
            f"invalid --redis-url {mask_url(url)!r}: it is not a Redis URL; give "
            "redis://HOST:PORT/DB, or leave the option out so that the bench "
            "starts a redis-server of its own"
        )
    client = redis_client(spec, socket_connect_timeout=5)
    try:
        return str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        text = str(exc)
        if isinstance(exc, MasterNotFoundError):
            # Its text repeats the state of every sentinel connection.
            text = "no sentinel named a master for the service"
        elif len(text) > _ERROR_CHARS:
            text = text[:_ERROR_CHARS] + "…"
        raise BackendUnavailableError(
            f"Redis at {mask_url(url)} is unavailable ({text}); start it or "
            "correct the URL, or leave out --redis-url so that the bench starts "
            "a redis-server of its own"
        ) from exc
    finally:
        client.close()


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<": operator.lt,
}


def compare_targets(
    results: dict[str, dict[str, dict[str, float]]],
) -> list[dict[str, Any]]:
    """Return each target with each backend's figure and whether it is met."""
    rows = []
    for section, figure, comparison, bound in TARGETS:
        for kind, sections in results.items():
            value = sections.get(section, {}).get(figure)
            if value is None:
                continue
            met = _COMPARISONS[comparison](value, bound)
            rows.append(
                {
                    "backend": kind,
                    "section": section,
                    "figure": figure,
                    "value": value,
                    "target": f"{comparison} {bound:g}",
                    "met": met,
                }
            )
    return rows


def run_bench(
    kinds: Sequence[str],
    sizes_name: str = "full",
    redis_url: str | None = None,
    sections: Sequence[str] | None = None,
    command: str = "chenu-desktop bench",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the chosen sections on each backend kind; return the JSON document.

    Without `redis_url`, a redis-server is started on a free loopback port
    for the run and stopped at its end. Temporary files are deleted.
    """
    sizes = SIZES[sizes_name]
    chosen = list(sections or ALL_SECTIONS)
    unknown = [name for name in chosen if name not in ALL_SECTIONS]
    if unknown:
        raise BenchError(
            f"unknown section {unknown[0]!r}: use some of {', '.join(ALL_SECTIONS)}"
        )
    report = progress or (lambda message: None)
    started = dt.datetime.now(dt.timezone.utc)
    results: dict[str, dict[str, dict[str, float]]] = {}
    redis_version = None
    with contextlib.ExitStack() as stack:
        workdir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="chenu-bench-"))
        )
        url = redis_url
        if "redis" in kinds and url is None:
            try:
                server = LocalRedisServer(workdir)
                server.start()
            except RedisServerError as exc:
                raise BenchError(
                    f"{exc}; or pass --redis-url, or use --backend-kind sqlite"
                ) from None
            stack.callback(server.stop)
            url = server.url
        if "redis" in kinds:
            assert url is not None
            redis_version = redis_server_version(url)
        for kind in kinds:
            backend = Backend(kind, workdir, url if kind == "redis" else None)
            results[kind] = {}
            for name in chosen:
                report(f"{kind}: {name}")
                begin = time.perf_counter()
                figures = SECTIONS[name](backend, sizes)
                figures["section_seconds"] = time.perf_counter() - begin
                results[kind][name] = figures
    return {
        "machine": machine_info(redis_version),
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "sizes": sizes_name,
        "worker_threads": THROUGHPUT_WORKERS,
        "default_workers": {q.value: n for q, n in DEFAULT_WORKERS.items()},
        "results": results,
        "targets": compare_targets(results),
        "duration_seconds": (
            dt.datetime.now(dt.timezone.utc) - started
        ).total_seconds(),
    }


ALL_SECTIONS = list(SECTIONS)


# --- output ------------------------------------------------------------------


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _header_lines(document: dict[str, Any]) -> list[str]:
    machine = document["machine"]
    versions = (
        f"Python {machine['python']}, Huey {machine['huey']}, "
        f"Celery {machine.get('celery') or '-'}, "
        f"redis-server {machine['redis_server'] or '-'}"
    )
    load = ", ".join(f"{value:.2f}" for value in machine["load_average_at_start"])
    return [
        f"date:     {document['date']}",
        f"command:  {document['command']}",
        f"machine:  {machine['cpu']}, {machine['cores']} cores, {machine['system']}",
        f"versions: {versions}",
        f"load average at start: {load}",
    ]


def _table_rows(document: dict[str, Any]) -> list[list[str]]:
    """Return one row per figure: section, figure, each backend's value, target."""
    results = document["results"]
    kinds = list(results)
    targets = {
        (row["backend"], row["section"], row["figure"]): row
        for row in document["targets"]
    }
    sections: list[str] = []
    for kind in kinds:
        sections += [name for name in results[kind] if name not in sections]

    rows: list[list[str]] = []
    for section in sections:
        figures: list[str] = []
        for kind in kinds:
            figures += [f for f in results[kind].get(section, {}) if f not in figures]
        for figure in figures:
            row = [section, figure]
            target = ""
            for kind in kinds:
                value = results[kind].get(section, {}).get(figure)
                text = "-" if value is None else _format_value(value)
                check = targets.get((kind, section, figure))
                if check is not None:
                    text += " met" if check["met"] else " MISSED"
                    target = check["target"]
                row.append(text)
            row.append(target)
            rows.append(row)
    return rows


def format_report(document: dict[str, Any]) -> str:
    """Return the document as text: the machine, then one table of every figure."""
    kinds = list(document["results"])
    headers = ["SECTION", "FIGURE", *(kind.upper() for kind in kinds), "TARGET"]
    rows = [headers, *_table_rows(document)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = [*_header_lines(document), ""]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append(f"finished in {document['duration_seconds']:.0f} s")
    return "\n".join(lines)


def command_line(args: Any) -> str:
    """Return the ``bench`` command line that the parsed options stand for."""
    words = ["chenu-desktop", "bench"]
    if args.quick:
        words.append("--quick")
    if args.json:
        words.append("--json")
    if args.backend_kind != "both":
        words += ["--backend-kind", args.backend_kind]
    if args.redis_url:
        words += ["--redis-url", mask_url(args.redis_url)]
    if args.sizes:
        words += ["--sizes", args.sizes]
    if args.sections:
        words += ["--sections", args.sections]
    return " ".join(words)


def bench_main(args: Any) -> int:
    """Run the bench for the parsed ``bench`` command line; print the result."""
    kinds = ["sqlite", "redis"] if args.backend_kind == "both" else [args.backend_kind]
    sizes_name = args.sizes or ("quick" if args.quick else "full")
    sections = args.sections.split(",") if args.sections else None
    command = command_line(args)
    # Errors of an unreachable --redis-url name it, masked.
    args.backend_display = mask_url(args.redis_url) if args.redis_url else None

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    document = run_bench(kinds, sizes_name, args.redis_url, sections, command, progress)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(format_report(document))
    return 0
