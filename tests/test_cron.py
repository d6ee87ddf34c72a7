"""Tests of the cron module: validation, fire times across DST, descriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cron_descriptor import Options, get_description
from croniter import croniter

from chenu_desktop import cron
from chenu_desktop.cron import (
    ALIASES,
    InvalidScheduleError,
    describe,
    fires_between,
    local_zone_name,
    next_fires,
    validate,
)
from chenu_desktop.errors import ChenuError

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
START_2024 = datetime(2024, 1, 1, tzinfo=UTC)


def fire_texts(
    expression: str, zone_name: str, after: datetime, count: int
) -> list[str]:
    """Return the next fires as ISO 8601 strings in the schedule's zone."""
    schedule = validate(expression, zone_name)
    return [fire.isoformat() for fire in next_fires(schedule, after, count)]


def reject(expression: str, timezone: str = "UTC") -> InvalidScheduleError:
    with pytest.raises(InvalidScheduleError) as caught:
        validate(expression, timezone)
    return caught.value


# --- Syntax ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "normalized"),
    [
        ("0 9 * * *", "0 9 * * *"),
        ("  0   9\t* * *  ", "0 9 * * *"),
        ("05 09 * * *", "5 9 * * *"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("1-30/5 * * * *", "1-30/5 * * * *"),
        ("0 9-9 * * *", "0 9 * * *"),
        ("59/15 * * * *", "59 * * * *"),
        ("10/15 * * * *", "10/15 * * * *"),
        ("0 0 * jan-Mar Mon-fRI", "0 0 * JAN-MAR MON-FRI"),
        ("0 0 * * 5-0", "0 0 * * 5-0"),
        ("0 0 * * fri-sun", "0 0 * * FRI-SUN"),
        ("0 0 * * 7-7", "0 0 * * 7"),
        ("0 0 * * 7/2", "0 0 * * 7"),
        ("0 0 l * *", "0 0 L * *"),
        ("0 9 * * mon#2", "0 9 * * MON#2"),
        ("0 0 1,15 * *", "0 0 1,15 * *"),
    ],
)
def test_validate_normalizes(expression: str, normalized: str) -> None:
    assert validate(expression, "UTC").normalized == normalized


@pytest.mark.parametrize(
    "expression",
    ["0 9-9 * * *", "0 0 * * fri-sun", "0 9 * * mon#2", "0 0 l * *", "59/15 * * * *"],
)
def test_normalized_is_stable(expression: str) -> None:
    normalized = validate(expression, "UTC").normalized
    assert validate(normalized, "UTC").normalized == normalized


def test_validate_keeps_typed_expression() -> None:
    schedule = validate("  0 9-9 * * mon  ", "UTC")
    assert schedule.expression == "0 9-9 * * mon"


@pytest.mark.parametrize(
    ("alias", "normalized"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@Daily", "0 0 * * *"),
    ],
)
def test_validate_aliases(alias: str, normalized: str) -> None:
    schedule = validate(alias, "UTC")
    assert schedule.normalized == normalized
    assert schedule.expression == alias


def test_validate_rejects_unknown_alias() -> None:
    error = reject("@reboot")
    assert error.field == "expression"
    assert error.value == "@reboot"
    assert "@daily" in str(error)


def test_validate_rejects_sixth_field() -> None:
    error = reject("0 0 9 * * *")
    assert error.field == "expression"
    assert error.value == "0 0 9 * * *"
    assert "got 6" in str(error)
    assert "Seconds" in str(error)


@pytest.mark.parametrize("expression", ["", "   ", "\t"])
def test_validate_rejects_empty(expression: str) -> None:
    error = reject(expression)
    assert error.field == "expression"
    assert error.value == ""
    assert "@daily" in str(error)


@pytest.mark.parametrize(
    ("expression", "count"),
    [("*", 1), ("* *", 2), ("* * *", 3), ("* * * *", 4), ("0 0 1 1 1 2024 0", 7)],
)
def test_validate_rejects_field_count(expression: str, count: int) -> None:
    error = reject(expression)
    assert error.field == "expression"
    assert f"got {count}" in str(error)


def test_validate_rejects_no_break_space() -> None:
    error = reject("0\u00a00 * * *")
    assert error.field == "expression"
    assert "spaces or tabs" in str(error)


@pytest.mark.parametrize(
    ("expression", "field", "value"),
    [
        ("5x * * * *", "minute", "5x"),
        ("1,,2 * * * *", "minute", "1,,2"),
        ("1, * * * *", "minute", "1,"),
        ("1-2-3 * * * *", "minute", "1-2-3"),
        ("*-5 * * * *", "minute", "*-5"),
        ("-1 * * * *", "minute", "-1"),
        ("1.5 * * * *", "minute", "1.5"),
        ("? * * * *", "minute", "?"),
        ("0 H * * *", "hour", "H"),
        ("0 0 ? * *", "day-of-month", "?"),
        ("0 0 15W * *", "day-of-month", "15W"),
        ("0 0 * mon *", "month", "mon"),
        ("0 0 * * jan", "day-of-week", "jan"),
        ("0 0 * * 5L", "day-of-week", "5L"),
        ("\uff10 0 * * *", "minute", "\uff10"),
    ],
)
def test_validate_rejects_stray_characters(
    expression: str, field: str, value: str
) -> None:
    error = reject(expression)
    assert error.field == field
    assert error.value == value
    assert repr(value) in str(error)


@pytest.mark.parametrize(
    ("expression", "field", "value"),
    [
        ("61 * * * *", "minute", "61"),
        ("60 * * * *", "minute", "60"),
        ("* 24 * * *", "hour", "24"),
        ("* * 32 * *", "day-of-month", "32"),
        ("* * 0 * *", "day-of-month", "0"),
        ("* * * 13 *", "month", "13"),
        ("* * * 0 *", "month", "0"),
        ("* * * * 8", "day-of-week", "8"),
        ("0-61 * * * *", "minute", "61"),
        ("99999999999999 * * * *", "minute", "99999999999999"),
    ],
)
def test_validate_rejects_out_of_range(expression: str, field: str, value: str) -> None:
    error = reject(expression)
    assert error.field == field
    assert error.value == value
    assert "use a value from" in str(error)


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("*/0 * * * *", "minute"),
        ("0 1-5/0 * * *", "hour"),
        ("0 0 * * 1/0", "day-of-week"),
    ],
)
def test_validate_rejects_zero_step(expression: str, field: str) -> None:
    error = reject(expression)
    assert error.field == field
    assert "step of 1 or more" in str(error)


@pytest.mark.parametrize(
    ("expression", "field", "value", "fix"),
    [
        ("0 0 * * 5-2", "day-of-week", "5-2", "5-0,1-2"),
        ("0 0 * * SAT-MON", "day-of-week", "SAT-MON", "SAT-SUN,MON"),
        ("0 0 * DEC-JAN *", "month", "DEC-JAN", "DEC,JAN"),
        ("50-10 * * * *", "minute", "50-10", "50-59,0-10"),
        ("0 20-3 * * *", "hour", "20-3", "20-23,0-3"),
        ("0 0 10-2 * *", "day-of-month", "10-2", "10-31,1-2"),
    ],
)
def test_validate_rejects_reversed_range(
    expression: str, field: str, value: str, fix: str
) -> None:
    error = reject(expression)
    assert error.field == field
    assert error.value == value
    assert fix in str(error)


@pytest.mark.parametrize("day_of_week", ["5-0", "FRI-SUN", "fri-0", "5-7"])
def test_sunday_wrap_fires(day_of_week: str) -> None:
    fires = fire_texts(f"0 0 * * {day_of_week}", "UTC", START_2024, 4)
    # 2024-01-05 is a Friday.
    assert fires == [
        "2024-01-05T00:00:00+00:00",
        "2024-01-06T00:00:00+00:00",
        "2024-01-07T00:00:00+00:00",
        "2024-01-12T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    "expression",
    ["0 0 31 2 *", "0 0 30 2 *", "0 0 30,31 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 */2"],
)
def test_validate_rejects_missing_date(expression: str) -> None:
    error = reject(expression)
    assert error.field == "day-of-month"
    assert error.value == expression.split(" ")[2]
    assert "never run" in str(error)


def test_validate_rejects_missing_nth_date() -> None:
    # Days 1 and 31: neither falls in the fifth week of a February.
    error = reject("0 0 */30 2 mon#5")
    assert error.field == "day-of-month"
    assert "MON#5" in str(error).upper()


def test_missing_date_with_weekday_fires() -> None:
    # Day-of-month OR day-of-week: February has no 31st, but it has Sundays.
    fires = fire_texts("0 0 31 2 0", "UTC", START_2024, 5)
    assert fires == [
        "2024-02-04T00:00:00+00:00",
        "2024-02-11T00:00:00+00:00",
        "2024-02-18T00:00:00+00:00",
        "2024-02-25T00:00:00+00:00",
        "2025-02-02T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    "expression", ["0 0 * * mon-fri", "0 0 * * MON-FRI", "0 0 * * Mon-Fri"]
)
def test_names_any_case(expression: str) -> None:
    fires = fire_texts(expression, "UTC", datetime(2024, 1, 5, tzinfo=UTC), 2)
    # 2024-01-05 is a Friday, so the next weekdays are Monday and Tuesday.
    assert fires == ["2024-01-08T00:00:00+00:00", "2024-01-09T00:00:00+00:00"]


@pytest.mark.parametrize("expression", ["0 0 * JAN,jul *", "0 0 * 1,7 *"])
def test_month_names_fire(expression: str) -> None:
    fires = fire_texts(expression, "UTC", datetime(2024, 1, 31, tzinfo=UTC), 1)
    assert fires == ["2024-07-01T00:00:00+00:00"]


def test_last_day_fires() -> None:
    fires = fire_texts("0 0 L * *", "UTC", START_2024, 4)
    assert fires == [
        "2024-01-31T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
        "2024-03-31T00:00:00+00:00",
        "2024-04-30T00:00:00+00:00",
    ]


def test_last_day_non_leap_february() -> None:
    fires = fire_texts("0 0 L 2 *", "UTC", START_2024, 2)
    assert fires == ["2024-02-29T00:00:00+00:00", "2025-02-28T00:00:00+00:00"]


@pytest.mark.parametrize("day_of_month", ["1,L", "L-3", "LW", "10-L"])
def test_validate_rejects_l_in_list(day_of_month: str) -> None:
    error = reject(f"0 0 {day_of_month} * *")
    assert error.field == "day-of-month"
    assert error.value == day_of_month


def test_nth_weekday_fires() -> None:
    fires = fire_texts("0 9 * * mon#2", "UTC", START_2024, 3)
    assert fires == [
        "2024-01-08T09:00:00+00:00",
        "2024-02-12T09:00:00+00:00",
        "2024-03-11T09:00:00+00:00",
    ]


def test_nth_weekday_sunday_seven() -> None:
    first_sundays = fire_texts("0 0 * * 7#1", "UTC", START_2024, 2)
    assert first_sundays == ["2024-01-07T00:00:00+00:00", "2024-02-04T00:00:00+00:00"]


@pytest.mark.parametrize(
    "day_of_week", ["mon#0", "mon#6", "mon#2,fri", "mon#1,mon#3", "mon-fri#2", "#2"]
)
def test_validate_rejects_bad_nth(day_of_week: str) -> None:
    error = reject(f"0 9 * * {day_of_week}")
    assert error.field == "day-of-week"
    assert error.value == day_of_week
    assert "DAY#N" in str(error)


def test_sunday_zero_and_seven() -> None:
    zero = fire_texts("0 0 * * 0", "UTC", START_2024, 3)
    seven = fire_texts("0 0 * * 7", "UTC", START_2024, 3)
    name = fire_texts("0 0 * * sun", "UTC", START_2024, 3)
    assert zero == [
        "2024-01-07T00:00:00+00:00",
        "2024-01-14T00:00:00+00:00",
        "2024-01-21T00:00:00+00:00",
    ]
    assert seven == zero
    assert name == zero


def test_equal_bounds_range() -> None:
    # croniter 7 alone reads 9-9 as every hour.
    assert croniter.expand("0 9-9 * * *")[0][1] == ["*"]
    fires = fire_texts("0 9-9 * * *", "UTC", START_2024, 2)
    assert fires == ["2024-01-01T09:00:00+00:00", "2024-01-02T09:00:00+00:00"]


def test_maximum_with_step() -> None:
    # croniter 7.0.0 reads "59/15" as minute 59 only, not as every 15 minutes.
    assert croniter.expand("59/15 * * * *")[0][0] == [59]
    fires = fire_texts("59/15 * * * *", "UTC", START_2024, 2)
    assert fires == ["2024-01-01T00:59:00+00:00", "2024-01-01T01:59:00+00:00"]


def test_start_with_step() -> None:
    fires = fire_texts("50/4 * * * *", "UTC", START_2024, 4)
    assert fires == [
        "2024-01-01T00:50:00+00:00",
        "2024-01-01T00:54:00+00:00",
        "2024-01-01T00:58:00+00:00",
        "2024-01-01T01:50:00+00:00",
    ]


def test_range_with_step() -> None:
    schedule = validate("1-30/5 * * * *", "UTC")
    minutes = [fire.minute for fire in next_fires(schedule, START_2024, 7)]
    assert minutes == [1, 6, 11, 16, 21, 26, 1]


def test_day_or_when_both_restricted() -> None:
    # The 1st, the 15th and every Friday (2024-01-05 is a Friday).
    fires = fire_texts("30 4 1,15 * 5", "UTC", START_2024, 5)
    assert fires == [
        "2024-01-01T04:30:00+00:00",
        "2024-01-05T04:30:00+00:00",
        "2024-01-12T04:30:00+00:00",
        "2024-01-15T04:30:00+00:00",
        "2024-01-19T04:30:00+00:00",
    ]


def test_day_and_with_day_star() -> None:
    # Odd-numbered days that are Mondays, as cron reads "*/2" with a weekday.
    fires = fire_texts("0 0 */2 * 1", "UTC", START_2024, 3)
    assert fires == [
        "2024-01-15T00:00:00+00:00",
        "2024-01-29T00:00:00+00:00",
        "2024-02-05T00:00:00+00:00",
    ]


def test_day_and_with_weekday_star() -> None:
    # The 1st of the month when it is a Sunday, Tuesday, Thursday or Saturday.
    fires = fire_texts("0 0 1 * */2", "UTC", START_2024, 3)
    assert fires == [
        "2024-02-01T00:00:00+00:00",
        "2024-06-01T00:00:00+00:00",
        "2024-08-01T00:00:00+00:00",
    ]


def test_day_or_with_nth_weekday() -> None:
    # croniter 7 alone finds no time at all for this expression.
    fires = fire_texts("0 9 1 * mon#2", "UTC", START_2024, 4)
    assert fires == [
        "2024-01-01T09:00:00+00:00",
        "2024-01-08T09:00:00+00:00",
        "2024-02-01T09:00:00+00:00",
        "2024-02-12T09:00:00+00:00",
    ]


def test_day_or_counts_a_day_once() -> None:
    # 2024-03-01 is a Friday, so both day fields match it.
    fires = fire_texts("0 0 1 * 5", "UTC", datetime(2024, 2, 29, tzinfo=UTC), 2)
    assert fires == ["2024-03-01T00:00:00+00:00", "2024-03-08T00:00:00+00:00"]


@pytest.mark.parametrize(
    ("expression", "fixed_time"),
    [
        ("30 2 * * *", True),
        ("0,30 1-3 * * *", True),
        ("0-59 1 * * *", True),
        ("*/30 * * * *", False),
        ("0 * * * *", False),
        ("*/30 1 * * *", False),
        ("@hourly", False),
        ("@daily", True),
    ],
)
def test_schedule_fixed_time(expression: str, fixed_time: bool) -> None:
    assert validate(expression, "UTC").fixed_time is fixed_time


@pytest.mark.parametrize(
    ("expression", "day_or"),
    [
        ("0 0 1 * 1", True),
        ("0 0 L * MON#2", True),
        ("0 0 */2 * 1", False),
        ("0 0 1 * */2", False),
        ("0 0 * * 1", False),
        ("0 0 1 * *", False),
    ],
)
def test_schedule_day_or(expression: str, day_or: bool) -> None:
    assert validate(expression, "UTC").day_or is day_or


def test_error_is_chenu_error() -> None:
    error = reject("61 * * * *")
    assert isinstance(error, ChenuError)
    assert isinstance(error, ValueError)
    assert str(error) == (
        "invalid minute '61' in cron expression '61 * * * *': use a value from 0 to 59"
    )


# --- Time zones -----------------------------------------------------------------


@pytest.mark.parametrize(
    "zone_name",
    [
        "Mars/Base",
        "",
        "localtime",
        "+05:00",
        "EST5EDT,M3.2.0,M11.1.0",
        "../UTC",
        "America",
    ],
)
def test_validate_rejects_timezone(zone_name: str) -> None:
    error = reject("0 9 * * *", zone_name)
    assert error.field == "timezone"
    assert error.value == zone_name
    assert "IANA" in str(error)


def test_validate_rejects_timezone_object() -> None:
    error = reject("0 9 * * *", PARIS)  # type: ignore[arg-type]
    assert error.field == "timezone"


@pytest.mark.parametrize(
    ("zone_name", "canonical"),
    [
        ("america/new_york", "America/New_York"),
        (" Europe/Paris ", "Europe/Paris"),
        ("utc", "UTC"),
    ],
)
def test_validate_timezone_canonical(zone_name: str, canonical: str) -> None:
    assert validate("0 9 * * *", zone_name).timezone == canonical


def test_validate_default_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    assert validate("0 9 * * *").timezone == "Asia/Kolkata"


def test_next_fires_zone_aware() -> None:
    schedule = validate("0 9 * * *", "America/New_York")
    fire = next_fires(schedule, START_2024)[0]
    assert isinstance(fire.tzinfo, ZoneInfo)
    assert fire.tzinfo.key == "America/New_York"
    assert fire.isoformat() == "2024-01-01T09:00:00-05:00"


def test_next_fires_keeps_offset_after_change() -> None:
    # A fixed UTC-05:00 would put the summer runs at 10:00 EDT.
    after = datetime.fromisoformat("2024-03-01T12:00:00-05:00")
    fires = fire_texts("0 9 1 * *", "America/New_York", after, 2)
    assert fires == ["2024-04-01T09:00:00-04:00", "2024-05-01T09:00:00-04:00"]


@pytest.fixture
def no_zone_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point every source of the local zone at nothing, and return a scratch dir."""
    monkeypatch.delenv("TZ", raising=False)
    monkeypatch.setattr(cron, "_LOCALTIME_PATH", tmp_path / "no-localtime")
    monkeypatch.setattr(cron, "_TIMEZONE_FILE_PATH", tmp_path / "no-timezone")
    return tmp_path


@pytest.mark.parametrize(
    "value",
    [
        "Europe/Paris",
        ":Europe/Paris",
        "/usr/share/zoneinfo/Europe/Paris",
        "europe/paris",
    ],
)
def test_local_zone_from_tz(
    no_zone_sources: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TZ", value)
    assert local_zone_name() == "Europe/Paris"


@pytest.mark.parametrize(
    "target",
    [
        "/usr/share/zoneinfo/Asia/Kolkata",
        "../usr/share/zoneinfo/Asia/Kolkata",
        "/var/db/timezone/zoneinfo/Asia/Kolkata",
        "/usr/share/zoneinfo/posix/Asia/Kolkata",
    ],
)
def test_local_zone_from_link(
    no_zone_sources: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    link = no_zone_sources / "localtime"
    link.symlink_to(target)
    monkeypatch.setattr(cron, "_LOCALTIME_PATH", link)
    assert local_zone_name() == "Asia/Kolkata"


def test_local_zone_from_file(
    no_zone_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = no_zone_sources / "timezone"
    path.write_text("Australia/Lord_Howe\n", encoding="utf-8")
    monkeypatch.setattr(cron, "_TIMEZONE_FILE_PATH", path)
    assert local_zone_name() == "Australia/Lord_Howe"


def test_local_zone_skips_posix_tz(
    no_zone_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    path = no_zone_sources / "timezone"
    path.write_text("Europe/Paris\n", encoding="utf-8")
    monkeypatch.setattr(cron, "_TIMEZONE_FILE_PATH", path)
    assert local_zone_name() == "Europe/Paris"


def test_local_zone_falls_back_to_utc(no_zone_sources: Path) -> None:
    assert local_zone_name() == "UTC"


# --- Daylight saving ------------------------------------------------------------


def test_spring_forward_fixed_time() -> None:
    after = datetime(2024, 3, 9, 12, tzinfo=NEW_YORK)
    fires = fire_texts("30 2 * * *", "America/New_York", after, 3)
    assert fires == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]


def test_spring_forward_wildcard() -> None:
    after = datetime(2024, 3, 10, 1, 0, tzinfo=NEW_YORK)
    fires = fire_texts("*/30 * * * *", "America/New_York", after, 3)
    assert fires == [
        "2024-03-10T01:30:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T03:30:00-04:00",
    ]


def test_spring_forward_wildcard_hour() -> None:
    # No catch-up run at 03:00: the job simply has no runs in the skipped hour.
    after = datetime(2024, 3, 10, 1, 30, tzinfo=NEW_YORK)
    fires = fire_texts("15,45 * * * *", "America/New_York", after, 2)
    assert fires == ["2024-03-10T01:45:00-05:00", "2024-03-10T03:15:00-04:00"]


def test_spring_forward_wildcard_minute() -> None:
    # "*/15 2" is not a fixed-time job, so it has no runs on 2024-03-10.
    after = datetime(2024, 3, 10, 0, 0, tzinfo=NEW_YORK)
    fires = fire_texts("*/15 2 * * *", "America/New_York", after, 1)
    assert fires == ["2024-03-11T02:00:00-04:00"]


def test_spring_forward_no_repeat() -> None:
    # The catch-up run at 03:00 is not repeated when the scheduler resumes from it.
    after = datetime(2024, 3, 10, 3, 0, tzinfo=NEW_YORK)
    fires = fire_texts("30 2 * * *", "America/New_York", after, 1)
    assert fires == ["2024-03-11T02:30:00-04:00"]


def test_spring_forward_catch_up_once() -> None:
    after = datetime(2024, 3, 10, 0, 0, tzinfo=NEW_YORK)
    fires = fire_texts("0,30 2,3 * * *", "America/New_York", after, 3)
    assert fires == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T03:30:00-04:00",
        "2024-03-11T02:00:00-04:00",
    ]


def test_spring_forward_paris() -> None:
    after = datetime(2024, 3, 30, 12, tzinfo=PARIS)
    fixed = fire_texts("30 2 * * *", "Europe/Paris", after, 2)
    assert fixed == ["2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"]


def test_spring_forward_paris_wildcard() -> None:
    after = datetime(2024, 3, 31, 1, 15, tzinfo=PARIS)
    fires = fire_texts("*/20 * * * *", "Europe/Paris", after, 3)
    assert fires == [
        "2024-03-31T01:20:00+01:00",
        "2024-03-31T01:40:00+01:00",
        "2024-03-31T03:00:00+02:00",
    ]


def test_fall_back_fixed_time() -> None:
    after = datetime(2024, 11, 2, 12, tzinfo=NEW_YORK)
    fires = fire_texts("30 1 * * *", "America/New_York", after, 2)
    assert fires == ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]


def test_fall_back_wildcard() -> None:
    after = datetime(2024, 11, 3, 0, 30, tzinfo=NEW_YORK)
    fires = fire_texts("*/30 * * * *", "America/New_York", after, 5)
    assert fires == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]


def test_fall_back_wildcard_minute() -> None:
    # The minute field starts with "*", so the job runs in both passes.
    after = datetime(2024, 11, 3, 0, 0, tzinfo=NEW_YORK)
    fires = fire_texts("*/30 1 * * *", "America/New_York", after, 5)
    assert fires == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-04T01:00:00-05:00",
    ]


def test_fall_back_from_first_pass() -> None:
    # At 01:45 EDT the second pass, from 01:00 EST, is still to come.
    after = datetime(2024, 11, 3, 1, 45, tzinfo=NEW_YORK)
    fires = fire_texts("*/30 * * * *", "America/New_York", after, 3)
    assert fires == [
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]


def test_fall_back_from_second_pass() -> None:
    after = datetime(2024, 11, 3, 1, 10, fold=1, tzinfo=NEW_YORK)
    fires = fire_texts("*/30 * * * *", "America/New_York", after, 2)
    assert fires == ["2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"]


def test_fall_back_fixed_after_first_pass() -> None:
    after = datetime(2024, 11, 3, 1, 45, tzinfo=NEW_YORK)
    fires = fire_texts("30 1 * * *", "America/New_York", after, 1)
    assert fires == ["2024-11-04T01:30:00-05:00"]


def test_fall_back_paris() -> None:
    after = datetime(2024, 10, 26, 12, tzinfo=PARIS)
    fires = fire_texts("30 2 * * *", "Europe/Paris", after, 2)
    assert fires == ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"]


def test_fall_back_paris_wildcard() -> None:
    after = datetime(2024, 10, 27, 1, 45, tzinfo=PARIS)
    fires = fire_texts("*/30 * * * *", "Europe/Paris", after, 5)
    assert fires == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]


def test_half_hour_zone() -> None:
    fixed = fire_texts("30 9 * * *", "Asia/Kolkata", START_2024, 1)
    hourly = fire_texts("0 * * * *", "Asia/Kolkata", START_2024, 1)
    assert fixed == ["2024-01-01T09:30:00+05:30"]
    assert hourly == ["2024-01-01T06:00:00+05:30"]


def test_half_hour_zone_utc_instant() -> None:
    schedule = validate("30 9 * * *", "Asia/Kolkata")
    fire = next_fires(schedule, START_2024)[0]
    assert fire.astimezone(UTC) == datetime(2024, 1, 1, 4, 0, tzinfo=UTC)


def test_half_hour_shift_spring() -> None:
    # Lord Howe Island moves from 02:00 to 02:30 on 2024-10-06.
    after = datetime(2024, 10, 5, 12, tzinfo=LORD_HOWE)
    fixed = fire_texts("15 2 * * *", "Australia/Lord_Howe", after, 2)
    assert fixed == ["2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"]


def test_half_hour_shift_spring_wildcard() -> None:
    after = datetime(2024, 10, 6, 1, 40, tzinfo=LORD_HOWE)
    fires = fire_texts("*/15 * * * *", "Australia/Lord_Howe", after, 3)
    assert fires == [
        "2024-10-06T01:45:00+10:30",
        "2024-10-06T02:30:00+11:00",
        "2024-10-06T02:45:00+11:00",
    ]


def test_half_hour_shift_fall() -> None:
    # Lord Howe Island moves from 02:00 back to 01:30 on 2024-04-07.
    after = datetime(2024, 4, 6, 12, tzinfo=LORD_HOWE)
    fixed = fire_texts("45 1 * * *", "Australia/Lord_Howe", after, 2)
    assert fixed == ["2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"]


def test_half_hour_shift_fall_wildcard() -> None:
    after = datetime(2024, 4, 7, 1, 20, tzinfo=LORD_HOWE)
    fires = fire_texts("*/15 * * * *", "Australia/Lord_Howe", after, 5)
    assert fires == [
        "2024-04-07T01:30:00+11:00",
        "2024-04-07T01:45:00+11:00",
        "2024-04-07T01:30:00+10:30",
        "2024-04-07T01:45:00+10:30",
        "2024-04-07T02:00:00+10:30",
    ]


def test_skipped_day() -> None:
    # Samoa skipped 2011-12-30, so that day's midnight run lands on the 31st once.
    after = datetime(2011, 12, 29, 12, tzinfo=ZoneInfo("Pacific/Apia"))
    fires = fire_texts("0 0 * * *", "Pacific/Apia", after, 2)
    assert fires == ["2011-12-31T00:00:00+14:00", "2012-01-01T00:00:00+14:00"]


def test_leap_day() -> None:
    after = datetime(2024, 3, 1, tzinfo=UTC)
    fires = fire_texts("0 0 29 2 *", "UTC", after, 2)
    assert fires == ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]


# --- next_fires -----------------------------------------------------------------


def test_next_fires_strictly_after() -> None:
    after = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    fires = fire_texts("0 9 * * *", "UTC", after, 1)
    assert fires == ["2024-01-02T09:00:00+00:00"]


def test_next_fires_after_seconds() -> None:
    after = datetime(2024, 1, 1, 8, 59, 59, 999_999, tzinfo=UTC)
    fires = fire_texts("0 9 * * *", "UTC", after, 1)
    assert fires == ["2024-01-01T09:00:00+00:00"]


def test_next_fires_after_other_zone() -> None:
    # 23:00 in New York is 05:00 the next day in Paris.
    after = datetime(2024, 1, 1, 23, 0, tzinfo=NEW_YORK)
    fires = fire_texts("0 6 * * *", "Europe/Paris", after, 1)
    assert fires == ["2024-01-02T06:00:00+01:00"]


def test_next_fires_zero_count() -> None:
    assert next_fires(validate("* * * * *", "UTC"), START_2024, 0) == []


def test_next_fires_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="count"):
        next_fires(validate("* * * * *", "UTC"), START_2024, -1)


def test_next_fires_rejects_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_fires(validate("* * * * *", "UTC"), datetime(2024, 1, 1))


# --- fires_between --------------------------------------------------------------


def utc_texts(fires: list[datetime]) -> list[str]:
    return [fire.isoformat() for fire in fires]


def test_fires_between_fall_back() -> None:
    schedule = validate("*/30 * * * *", "America/New_York")
    start = datetime(2024, 11, 3, 0, 40, tzinfo=NEW_YORK)
    end = datetime(2024, 11, 3, 2, 0, tzinfo=NEW_YORK)
    fires = fires_between(schedule, start, end)
    assert utc_texts(fires) == [
        "2024-11-03T05:00:00+00:00",
        "2024-11-03T05:30:00+00:00",
        "2024-11-03T06:00:00+00:00",
        "2024-11-03T06:30:00+00:00",
        "2024-11-03T07:00:00+00:00",
    ]


def test_fires_between_fall_back_fixed() -> None:
    schedule = validate("30 1 * * *", "America/New_York")
    start = datetime(2024, 11, 2, 12, tzinfo=NEW_YORK)
    end = datetime(2024, 11, 4, 12, tzinfo=NEW_YORK)
    fires = fires_between(schedule, start, end)
    assert utc_texts(fires) == [
        "2024-11-03T05:30:00+00:00",
        "2024-11-04T06:30:00+00:00",
    ]


def test_fires_between_spring_forward() -> None:
    schedule = validate("30 2 * * *", "America/New_York")
    start = datetime(2024, 3, 9, tzinfo=NEW_YORK)
    end = datetime(2024, 3, 12, tzinfo=NEW_YORK)
    fires = fires_between(schedule, start, end)
    assert utc_texts(fires) == [
        "2024-03-09T07:30:00+00:00",
        "2024-03-10T07:00:00+00:00",
        "2024-03-11T06:30:00+00:00",
    ]


def test_fires_between_spring_wildcard() -> None:
    schedule = validate("20 * * * *", "America/New_York")
    start = datetime(2024, 3, 10, 0, 30, tzinfo=NEW_YORK)
    end = datetime(2024, 3, 10, 4, 30, tzinfo=NEW_YORK)
    fires = fires_between(schedule, start, end)
    local = [fire.astimezone(NEW_YORK).isoformat() for fire in fires]
    assert local == [
        "2024-03-10T01:20:00-05:00",
        "2024-03-10T03:20:00-04:00",
        "2024-03-10T04:20:00-04:00",
    ]


def test_fires_between_bounds() -> None:
    schedule = validate("0 * * * *", "UTC")
    start = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
    end = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)
    fires = fires_between(schedule, start, end)
    assert utc_texts(fires) == [
        "2024-01-01T02:00:00+00:00",
        "2024-01-01T03:00:00+00:00",
    ]


def test_fires_between_utc() -> None:
    schedule = validate("0 9 * * *", "Asia/Kolkata")
    fires = fires_between(schedule, START_2024, START_2024 + timedelta(days=1))
    assert fires == [datetime(2024, 1, 1, 3, 30, tzinfo=UTC)]
    assert fires[0].tzinfo is UTC


def test_fires_between_limit() -> None:
    schedule = validate("* * * * *", "UTC")
    fires = fires_between(
        schedule, START_2024, START_2024 + timedelta(days=1), limit=10
    )
    assert len(fires) == 10
    assert fires[0] == START_2024 + timedelta(minutes=1)
    assert fires[-1] == START_2024 + timedelta(minutes=10)


def test_fires_between_pages() -> None:
    schedule = validate("*/30 * * * *", "America/New_York")
    start = datetime(2024, 11, 2, 23, 0, tzinfo=NEW_YORK)
    end = datetime(2024, 11, 3, 4, 0, tzinfo=NEW_YORK)
    whole = fires_between(schedule, start, end)
    first_page = fires_between(schedule, start, end, limit=4)
    second_page = fires_between(schedule, first_page[-1], end)
    assert first_page + second_page == whole


def test_fires_between_empty_range() -> None:
    schedule = validate("* * * * *", "UTC")
    assert fires_between(schedule, START_2024, START_2024) == []
    assert fires_between(schedule, START_2024, START_2024 - timedelta(hours=1)) == []


def test_fires_between_zero_limit() -> None:
    schedule = validate("* * * * *", "UTC")
    assert fires_between(schedule, START_2024, START_2024 + timedelta(hours=1), 0) == []


def test_fires_between_rejects_naive() -> None:
    schedule = validate("* * * * *", "UTC")
    with pytest.raises(ValueError, match="naive"):
        fires_between(schedule, START_2024, datetime(2024, 1, 2))


@pytest.mark.parametrize(
    ("expression", "zone_name", "start"),
    [
        ("*/20 * * * *", "America/New_York", datetime(2024, 11, 2, 22, tzinfo=UTC)),
        ("*/20 * * * *", "America/New_York", datetime(2024, 3, 9, 22, tzinfo=UTC)),
        ("10 0-3 * * *", "America/New_York", datetime(2024, 11, 2, 22, tzinfo=UTC)),
        ("10 0-3 * * *", "America/New_York", datetime(2024, 3, 9, 22, tzinfo=UTC)),
        ("*/15 * * * *", "Australia/Lord_Howe", datetime(2024, 4, 6, 10, tzinfo=UTC)),
        ("0,30 2 * * *", "Europe/Paris", datetime(2024, 3, 30, 10, tzinfo=UTC)),
        ("0 0 1 * 5", "Europe/Paris", datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_fires_between_matches_next_fires(
    expression: str, zone_name: str, start: datetime
) -> None:
    schedule = validate(expression, zone_name)
    end = start + timedelta(days=2)
    listed = fires_between(schedule, start, end)
    stepped = []
    moment = start
    while True:
        fire = next_fires(schedule, moment)[0]
        if fire > end:
            break
        stepped.append(fire.astimezone(UTC))
        moment = fire
    assert listed == stepped
    assert listed == sorted(set(listed))


# --- Descriptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("0 9 * * *", "At 09:00"),
        ("@hourly", "Every hour"),
        ("@weekly", "At 00:00, only on Sunday"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("59/15 * * * *", "At 59 minutes past the hour"),
        ("0 9-9 * * *", "At 09:00"),
        ("0 0 L * *", "At 00:00, on the last day of the month"),
        ("0 9 * * mon#2", "At 09:00, on the second Monday of the month"),
        ("0 0 * * fri-sun", "At 00:00, Friday through Sunday"),
        ("30 4 1,15 * 5", "At 04:30, on day 1 and 15 of the month, or on Friday"),
        ("0 0 */2 * 1", "At 00:00, every 2 days, only on Monday"),
        (
            "0 9 1 * mon#2",
            "At 09:00, on day 1 of the month, or on the second Monday of the month",
        ),
        (
            "0 0 1 * mon-fri",
            "At 00:00, on day 1 of the month, or Monday through Friday",
        ),
    ],
)
def test_describe_text(expression: str, text: str) -> None:
    assert describe(validate(expression, "UTC")) == text


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_describe_alias(alias: str) -> None:
    fields = validate(ALIASES[alias], "UTC")
    assert describe(validate(alias, "UTC")) == describe(fields)


def test_describe_daily() -> None:
    assert describe(validate("@daily", "UTC")) == "At 00:00"


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 * * *",
        "*/5 9-17 * * 1-5",
        "0 0 1 1 *",
        "15 14 1 * *",
        "0 22 * * 1-5",
        "0 0 L 2 *",
    ],
)
def test_describe_matches_cron_descriptor(expression: str) -> None:
    options = Options(locale_code="en_US", use_24hour_time_format=True)
    expected = get_description(expression, options)
    assert describe(validate(expression, "UTC")) == expected


def test_describe_rejects_string() -> None:
    with pytest.raises(TypeError, match="CronSchedule"):
        describe("61 * * * *")  # type: ignore[arg-type]
