"""The scheduler service on real backends, driven by a controllable clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Iterator

import pytest

from chenu_desktop import InvalidArgumentError, TaskQueue, TaskStatus, background_task
from chenu_desktop.cron import InvalidScheduleError
from chenu_desktop.engine import Engine
from chenu_desktop.scheduling.service import LEASE_TTL, ScheduleNotFoundError

from engine_helpers import (
    backend_url,
    make_config,
    open_test_engine,
    wait_final,
    wait_until,
)

UTC = dt.timezone.utc


@background_task(name="s_report", queue=TaskQueue.LOW)
def report(period: str = "hourly", target: str = "ops") -> str:
    return f"{period}:{target}"


@background_task(
    name="s_governed", queue=TaskQueue.GOVERNANCE, requires_governance=True
)
def governed_job(approved_by: str) -> str:
    return approved_by


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: dt.datetime) -> float:
        self.now = when.timestamp()
        return self.now


def at(text: str, zone: str = "UTC") -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone))


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    redis_url = (
        request.getfixturevalue("redis_url") if request.param == "redis" else None
    )
    return backend_url(request.param, tmp_path, redis_url)


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2024-06-01T12:00:30"))


@pytest.fixture
def engine(url: str, clock: Clock) -> Iterator[Engine]:
    engine = Engine(make_config(url), clock=clock)
    try:
        yield engine
    finally:
        engine.close()


def tasks_of(engine: Engine, task_ids: list[str]):
    return [engine.task_service.get_status(task_id) for task_id in task_ids]


# --- editing ---------------------------------------------------------------------


def test_add_lists_schedule(engine: Engine) -> None:
    sched = engine.scheduler_service
    info = sched.add_schedule(
        name="hourly_report",
        task_name="s_report",
        schedule="0 * * * *",
        period="hourly",
        timezone="Europe/Paris",
        misfire="skip",
    )
    assert info.next_run == at("2024-06-01T15:00", "Europe/Paris")
    assert info.next_run.tzinfo == zoneinfo.ZoneInfo("Europe/Paris")
    listed = {s.name: s for s in sched.list_schedules()}
    stored = listed["hourly_report"]
    assert stored.kwargs == {"period": "hourly"}
    assert stored.timezone == "Europe/Paris"
    assert stored.enabled
    assert stored.misfire == "skip"
    assert stored.last_run is None
    assert "hour" in stored.description.lower()


def test_task_kwargs_for_clashing_names(engine: Engine) -> None:
    info = engine.scheduler_service.add_schedule(
        name="clash", task_name="s_report", schedule="@daily",
        task_kwargs={"target": "db"},
    )  # fmt: skip
    assert info.kwargs == {"target": "db"}


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("0 25 * * *", "hour"),
        ("61 * * * *", "minute"),
        ("* * 32 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("5-2 * * * *", "minute"),
        ("", "expression"),
        ("* * * *", "expression"),
    ],
)
def test_invalid_expression_not_stored(
    engine: Engine, expression: str, field: str
) -> None:
    sched = engine.scheduler_service
    before = [s.name for s in sched.list_schedules()]
    with pytest.raises(InvalidScheduleError) as caught:
        sched.add_schedule(name="bad", task_name="s_report", schedule=expression)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert [s.name for s in sched.list_schedules()] == before


def test_invalid_zone_rejected(engine: Engine) -> None:
    with pytest.raises(InvalidScheduleError, match="Mars/Olympus"):
        engine.scheduler_service.add_schedule(
            name="z", task_name="s_report", schedule="@hourly", timezone="Mars/Olympus"
        )


def test_bad_arguments_rejected(engine: Engine) -> None:
    sched = engine.scheduler_service
    with pytest.raises(InvalidArgumentError, match="signature"):
        sched.add_schedule(name="a", task_name="s_report", schedule="@hourly", nope=1)
    with pytest.raises(InvalidArgumentError, match="misfire"):
        sched.add_schedule(
            name="a", task_name="s_report", schedule="@hourly", misfire="later"
        )
    sched.add_schedule(name="a", task_name="s_report", schedule="@hourly")
    with pytest.raises(InvalidArgumentError, match="exists already"):
        sched.add_schedule(name="a", task_name="s_report", schedule="@daily")
    with pytest.raises(ScheduleNotFoundError, match="'missing'"):
        sched.update_schedule("missing", schedule="@daily")
    with pytest.raises(InvalidScheduleError):
        sched.update_schedule("a", schedule="99 * * * *")
    assert sched.get_schedule("a").expression == "@hourly"


def test_default_schedules_seeded_once(engine: Engine) -> None:
    sched = engine.scheduler_service
    sched.seed_defaults()
    names = {s.name: s for s in sched.list_schedules()}
    assert names["daily_cleanup"].task_name == "cleanup_old_data"
    assert names["daily_cleanup"].expression == "0 2 * * *"
    assert names["daily_cleanup"].kwargs == {"days": 30}
    assert names["hourly_analytics"].kwargs == {"period": "hourly"}
    sched.remove_schedule("daily_cleanup")
    sched.seed_defaults()
    assert "daily_cleanup" not in {s.name for s in sched.list_schedules()}


# --- firing ------------------------------------------------------------------


def test_fires_once_when_due(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(name="five", task_name="s_report", schedule="*/5 * * * *")
    clock.set(at("2024-06-01T12:04:59"))
    assert sched.tick() == []
    clock.set(at("2024-06-01T12:05:00.400"))
    fired = sched.tick()
    assert len(fired) == 1
    assert sched.tick() == []
    (record,) = tasks_of(engine, fired)
    assert record.queue is TaskQueue.SCHEDULED
    assert record.status is TaskStatus.PENDING
    assert record.kwargs == {}
    info = sched.get_schedule("five")
    assert info.last_run == at("2024-06-01T12:05")
    assert info.last_task_id == fired[0]
    assert info.last_status is TaskStatus.PENDING
    assert info.next_run == at("2024-06-01T12:10")
    events = sched.history("five")
    assert [e.kind for e in events] == ["fired"]
    assert events[0].task_id == fired[0]


def test_two_schedulers_fire_once(url: str, clock: Clock) -> None:
    first = Engine(make_config(url), clock=clock)
    second = Engine(make_config(url), clock=clock)
    try:
        first.scheduler_service.add_schedule(
            name="minute", task_name="s_report", schedule="* * * * *"
        )
        fired = []
        for minute in range(1, 4):
            clock.set(at(f"2024-06-01T12:0{minute}:00.500"))
            fired += first.scheduler_service.tick()
            fired += second.scheduler_service.tick()
        assert len(fired) == 3
        # The second takes over the lease but must not fire the same instants again.
        first.scheduler_service.stop()
        fired_again = second.scheduler_service.tick()
        assert second.scheduler_service.is_leader
        assert fired_again == []
        assert first.task_service.count_tasks(queue=TaskQueue.SCHEDULED) == 3
    finally:
        first.close()
        second.close()


def test_claims_stop_double_fire_without_lease(url: str, clock: Clock) -> None:
    """Even with an expired lease taken over mid-pass, an instant fires once."""
    first = Engine(make_config(url), clock=clock)
    second = Engine(make_config(url), clock=clock)
    try:
        first.scheduler_service.add_schedule(
            name="minute", task_name="s_report", schedule="* * * * *"
        )
        clock.set(at("2024-06-01T12:01:00.500"))
        assert len(first.scheduler_service.tick()) == 1
        # Make the lease free for the second instance without a new fire instant.
        first.scheduler_service.stop()
        stale = first.schedule_store.get("minute")
        stale.anchor = at("2024-06-01T12:00:30").timestamp()
        first.schedule_store.put(stale)
        assert second.scheduler_service.tick() == []
    finally:
        first.close()
        second.close()


def test_missed_runs_skip(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(name="hourly", task_name="s_report", schedule="0 * * * *")
    clock.set(at("2024-06-01T15:30"))
    assert sched.tick() == []
    events = sched.history("hourly")
    assert [e.kind for e in events] == ["missed", "missed", "missed"]
    missed_at = sorted(e.fire_at for e in events)
    assert missed_at == [at(f"2024-06-01T{h}:00").timestamp() for h in (13, 14, 15)]
    assert sched.get_schedule("hourly").next_run == at("2024-06-01T16:00")
    assert sched.tick() == []


def test_missed_runs_run_once(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(
        name="hourly", task_name="s_report", schedule="0 * * * *", misfire="run_once"
    )
    clock.set(at("2024-06-01T15:30"))
    fired = sched.tick()
    assert len(fired) == 1
    kinds = [e.kind for e in sched.history("hourly")]
    assert kinds.count("missed") == 3
    assert kinds.count("catch_up") == 1
    assert sched.get_schedule("hourly").last_run == at("2024-06-01T15:00")
    assert sched.tick() == []


def test_run_once_outside_grace_runs_nothing(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(
        name="hourly", task_name="s_report", schedule="0 * * * *",
        misfire="run_once", grace_seconds=600,
    )  # fmt: skip
    clock.set(at("2024-06-01T15:30"))
    assert sched.tick() == []
    assert [e.kind for e in sched.history("hourly")] == ["missed"] * 3


def test_edit_takes_effect_at_once(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(name="edit", task_name="s_report", schedule="0 13 * * *")
    clock.set(at("2024-06-01T12:10"))
    info = sched.update_schedule("edit", schedule="30 12 * * *", target="db")
    assert info.next_run == at("2024-06-01T12:30")
    assert info.kwargs == {"target": "db"}
    clock.set(at("2024-06-01T12:30:00.200"))
    fired = sched.tick()
    assert len(fired) == 1
    assert tasks_of(engine, fired)[0].kwargs == {"target": "db"}
    clock.set(at("2024-06-01T13:00:00.200"))
    assert sched.tick() == []


def test_disable_and_enable(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(name="toggle", task_name="s_report", schedule="*/10 * * * *")
    assert sched.disable_schedule("toggle").next_run is None
    clock.set(at("2024-06-01T12:10:00.100"))
    assert sched.tick() == []
    clock.set(at("2024-06-01T12:35"))
    info = sched.enable_schedule("toggle")
    assert info.next_run == at("2024-06-01T12:40")
    assert sched.tick() == []
    assert sched.history("toggle") == []
    clock.set(at("2024-06-01T12:40:00.100"))
    assert len(sched.tick()) == 1


def test_run_now_and_history(engine: Engine) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(
        name="now", task_name="s_report", schedule="@yearly", period="daily"
    )
    task_id = sched.run_now("now")
    record = engine.task_service.get_status(task_id)
    assert record.kwargs == {"period": "daily"}
    assert record.queue is TaskQueue.SCHEDULED
    events = sched.history("now")
    assert events[0].kind == "run_now"
    assert events[0].task_id == task_id
    with pytest.raises(ScheduleNotFoundError):
        sched.run_now("absent")


def test_remove_schedule(engine: Engine) -> None:
    sched = engine.scheduler_service
    sched.add_schedule(name="gone", task_name="s_report", schedule="@hourly")
    sched.remove_schedule("gone")
    assert "gone" not in {s.name for s in sched.list_schedules()}
    with pytest.raises(ScheduleNotFoundError):
        sched.remove_schedule("gone")


def test_governance_schedule_runs_approved(engine: Engine, clock: Clock) -> None:
    sched = engine.scheduler_service
    with pytest.raises(InvalidArgumentError, match="approved_by"):
        sched.add_schedule(name="gov", task_name="s_governed", schedule="*/5 * * * *")
    info = sched.add_schedule(
        name="gov", task_name="s_governed", schedule="*/5 * * * *", approved_by="ada"
    )
    assert info.approved_by == "ada"
    clock.set(at("2024-06-01T12:05:00.100"))
    (record,) = tasks_of(engine, sched.tick())
    assert record.status is TaskStatus.PENDING
    assert record.approved_by == "ada"
    assert "gov" in record.approval_reason
    sched.disable_schedule("gov")
    with pytest.raises(InvalidArgumentError, match="approved_by"):
        sched.enable_schedule("gov")
    assert sched.enable_schedule("gov", approved_by="grace").approved_by == "grace"


def test_spring_forward_fires_at_three(url: str) -> None:
    clock = Clock(at("2024-03-09T12:00", "America/New_York"))
    engine = Engine(make_config(url), clock=clock)
    try:
        sched = engine.scheduler_service
        sched.add_schedule(
            name="night", task_name="s_report", schedule="30 2 * * *",
            timezone="America/New_York",
        )  # fmt: skip
        assert sched.get_schedule("night").next_run == at(
            "2024-03-10T03:00", "America/New_York"
        )
        clock.set(at("2024-03-10T03:00:00.300", "America/New_York"))
        assert len(sched.tick()) == 1
    finally:
        engine.close()


def test_preview_in_zone(engine: Engine) -> None:
    after = at("2024-06-03T09:00", "America/New_York")
    runs = engine.scheduler_service.preview(
        "0 9 * * mon-fri", timezone="America/New_York", count=5, after=after
    )
    assert runs[0] == at("2024-06-04T09:00", "America/New_York")
    assert len(runs) == 5
    assert all(r.tzinfo == zoneinfo.ZoneInfo("America/New_York") for r in runs)
    assert runs[-1] == at("2024-06-10T09:00", "America/New_York")


def test_async_scheduler_service(engine: Engine) -> None:
    async def main() -> list[str]:
        service = engine.async_scheduler_service
        await service.add_schedule(name="aio", task_name="s_report", schedule="@hourly")
        return [s.name for s in await service.list_schedules()]

    assert "aio" in asyncio.run(main())


def test_lease_ttl_is_short() -> None:
    assert 5 <= LEASE_TTL <= 60


@pytest.mark.slow
def test_real_clock_fires_through_workers(url: str) -> None:
    """The scheduler thread fires a per-minute schedule at the next real minute."""
    engine = open_test_engine(url)
    try:
        engine.start_workers()
        engine.scheduler_service.add_schedule(
            name="every_minute",
            task_name="s_report",
            schedule="* * * * *",
            period="live",
        )
        task_id = wait_until(
            lambda: engine.scheduler_service.get_schedule("every_minute").last_task_id,
            timeout=75,
            message="the next minute's fire",
        )
        assert task_id is not None
        record = wait_final(engine, task_id)
        assert record.status is TaskStatus.SUCCESS
        assert record.result == "live:ops"
        fire = engine.scheduler_service.history("every_minute")[0]
        assert fire.kind == "fired"
        assert record.created_at - fire.fire_at < 1.0
    finally:
        engine.close()
