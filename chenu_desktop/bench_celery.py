"""Celery on the bench's Redis server, for the end-to-end comparison.

``chenu-desktop bench`` imports this module only when Celery is installed
(``pip install 'chenu-desktop[bench]'``). The Celery worker runs in a process
of its own, as Celery is deployed, with as many threads as the engine has
workers. The bench submits from its own process, and the no-op task counts
its runs in a Redis counter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from celery import Celery

from .redis_server import stop_process

#: The environment variables that carry the run's settings to the worker.
BROKER_VARIABLE = "CHENU_BENCH_CELERY_BROKER"
PREFIX_VARIABLE = "CHENU_BENCH_CELERY_PREFIX"
NOOP_TASK = "chenu_bench_celery_noop"
#: Maximum wait for a new worker to run its first task, in seconds.
START_TIMEOUT = 60.0


def _make_app(broker: str, prefix: str) -> Celery:
    app = Celery("chenu_bench", broker=broker)
    app.conf.update(
        task_ignore_result=True,
        task_default_queue="chenu_bench",
        # Every key of the run starts with the prefix, so the bench can
        # delete them all from a server it shares with others.
        broker_transport_options={"global_keyprefix": prefix},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        accept_content=["json"],
    )
    return app


# The worker process imports this module with the variables set; the bench
# process builds its own app in `CeleryRun` and leaves this one unused.
app = _make_app(
    os.environ.get(BROKER_VARIABLE, "redis://127.0.0.1:6379/0"),
    os.environ.get(PREFIX_VARIABLE, "chenu_bench_celery:"),
)
_counter: redis.Redis | None = None


@app.task(name=NOOP_TASK)
def noop() -> None:
    """Count the run in Redis: the worker is another process than the bench."""
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(app.conf.broker_url)
    _counter.incr(os.environ.get(PREFIX_VARIABLE, "") + "runs")


class CeleryError(RuntimeError):
    """The Celery worker exited or did not run its tasks in time."""


class CeleryRun:
    """A Celery worker process on a Redis database, and a producer to feed it."""

    def __init__(self, redis_url: str, workers: int, workdir: Path) -> None:
        self.redis_url = redis_url
        self.workers = workers
        self.prefix = f"chenu_bench_celery_{uuid.uuid4().hex[:10]}:"
        self.app = _make_app(redis_url, self.prefix)
        self.counter_key = self.prefix + "runs"
        self.client = redis.Redis.from_url(redis_url)
        self.log_path = workdir / (self.prefix.rstrip(":") + ".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker and wait until it has run one task."""
        env = dict(os.environ)
        env[BROKER_VARIABLE] = self.redis_url
        env[PREFIX_VARIABLE] = self.prefix
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", __name__, "worker",
                    "--pool", "threads", "--concurrency", str(self.workers),
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "--loglevel", "WARNING",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )  # fmt: skip
        self.submit()
        self.wait_runs(1, START_TIMEOUT)

    def submit(self) -> None:
        self.app.send_task(NOOP_TASK)

    def runs(self) -> int:
        return int(self.client.get(self.counter_key) or 0)

    def wait_runs(self, count: int, timeout: float) -> None:
        """Wait until the worker has run `count` tasks in all."""
        deadline = time.monotonic() + timeout
        while self.runs() < count:
            if self.process is not None and self.process.poll() is not None:
                raise CeleryError(
                    f"the Celery worker exited with code {self.process.returncode}; "
                    f"its output ends with: {self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise CeleryError(
                    f"timed out after {timeout:g} s waiting for the Celery worker, "
                    f"which ran {self.runs()} of {count} tasks; its output ends "
                    f"with: {self._log_tail()}"
                )
            # The worker is another process: polling its counter is the wait.
            time.sleep(0.005)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-500:].strip()
        except OSError:
            return "(no output)"

    def close(self) -> None:
        """Stop the worker by its pid and delete every key of the run."""
        if self.process is not None:
            # Celery's warm shutdown lets the worker's threads finish first.
            stop_process(self.process, 20.0)
            self.process = None
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.client.unlink(*keys)
        self.client.close()
        self.app.close()


def celery_end_to_end(
    redis_url: str, workers: int, tasks: int, workdir: Path
) -> tuple[float, list[float]]:
    """Return Celery's tasks/s and submit latencies for `tasks` no-ops.

    The time runs from the first submit to the last run, as in the engine's
    end-to-end figure; the worker is started and warm before it.
    """
    run = CeleryRun(redis_url, workers, workdir)
    try:
        run.start()
        latencies: list[float] = []
        start = time.perf_counter()
        for _ in range(tasks):
            before = time.perf_counter()
            run.submit()
            latencies.append(time.perf_counter() - before)
        run.wait_runs(tasks + 1, 30.0 + tasks / 100.0)
        rate = tasks / (time.perf_counter() - start)
    finally:
        run.close()
    return rate, latencies
