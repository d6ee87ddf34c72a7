"""Example tasks for ``chenu-desktop --demo``, so a new user sees work flow."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .context import current_task
from .models import TaskPriority, TaskQueue
from .registry import background_task

if TYPE_CHECKING:
    from .engine import Engine


@background_task(name="demo_build_report", queue=TaskQueue.LOW)
def build_report(pages: int = 20, seconds_per_page: float = 0.4) -> dict:
    """Build a report page by page, reporting progress; cancel stops it."""
    task = current_task()
    for page in range(1, pages + 1):
        if task.wait_cancelled(seconds_per_page):
            task.check_cancelled()
        task.set_progress(page / pages, f"page {page} of {pages}")
    return {"pages": pages}


@background_task(
    name="demo_flaky_sync", queue=TaskQueue.HIGH, max_retries=2, retry_delay=2.0
)
def flaky_sync(account: str = "acme") -> dict:
    """Fail the first attempts, as a remote service that is briefly down."""
    attempt = current_task().attempt
    if attempt < 3:
        raise ConnectionError(f"sync of {account} failed on attempt {attempt}")
    return {"account": account, "attempt": attempt}


@background_task(name="demo_always_fails", queue=TaskQueue.DEFAULT)
def always_fails(path: str = "/srv/data/missing.csv") -> None:
    """Fail every time, so the dashboard shows a failure with its traceback."""
    raise FileNotFoundError(f"input file {path} not found")


@background_task(
    name="demo_governance_payout",
    queue=TaskQueue.GOVERNANCE,
    priority=TaskPriority.CRITICAL,
    requires_governance=True,
)
def governance_payout(amount: int, approved_by: str) -> dict:
    """Pay out an amount once a person approved it."""
    return {"paid": amount, "approved_by": approved_by}


@background_task(name="demo_quick", queue=TaskQueue.DEFAULT)
def quick(n: int) -> int:
    return n * n


def submit_demo_work(engine: Engine) -> list[str]:
    """Submit a mix of the example tasks; return their ids."""
    service = engine.task_service
    ids = [
        service.submit("demo_build_report", pages=25),
        service.submit("demo_build_report", pages=60, seconds_per_page=0.5),
        service.submit("demo_flaky_sync", account="acme"),
        service.submit("demo_always_fails"),
        service.submit("demo_governance_payout", amount=1200),
        service.submit("demo_governance_payout", amount=75),
        service.submit("demo_build_report", pages=10, countdown=30),
    ]
    for n in range(40):
        ids.append(
            service.submit("demo_quick", n=n, priority=random.choice((0, 3, 6, 9)))
        )
    return ids
