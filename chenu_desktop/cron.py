"""Cron schedules: validation, fire times under daylight-saving rules, descriptions.

Pure functions over croniter and cron-descriptor. Nothing here stores or enqueues.
"""

from __future__ import annotations

import heapq
import os
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cron_descriptor import (
    CasingTypeEnum,
    DescriptionTypeEnum,
    ExpressionDescriptor,
    Options,
)
from croniter import CroniterBadDateError, croniter

from .errors import ChenuError

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun",
         "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}  # fmt: skip
_DAY_NAMES = {
    name: number
    for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
#: Maximum number of days in each month, counting February 29.
_MAX_MONTH_DAYS = {
    1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30,
    7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31,
}  # fmt: skip

#: A scan of every zone in the tz database from 1800 to 2040 found no UTC offset
#: jump larger than a day: Alaska moved back a day in 1867, and Samoa skipped
#: 2011-12-30. So two days bound every gap and every repeated stretch of wall time.
_MAX_OFFSET_JUMP = timedelta(days=2)
_OFFSET_SAMPLE_STEP = timedelta(minutes=30)

_LOCALTIME_PATH = Path("/etc/localtime")
_TIMEZONE_FILE_PATH = Path("/etc/timezone")


class InvalidScheduleError(ChenuError):
    """A cron expression or time zone that the scheduler cannot use.

    Attributes:
        field: "minute", "hour", "day-of-month", "month", "day-of-week",
            "expression" (the whole expression) or "timezone".
        value: The text that failed, as typed.
    """

    def __init__(self, field: str, value: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


@dataclass(frozen=True)
class CronSchedule:
    """A validated five-field cron expression and the IANA zone it runs in.

    Create it with `validate()`: the constructor checks nothing, and the functions
    of this module expect `normalized` to be what `validate()` made.

    Attributes:
        expression: The expression as the operator typed it, stripped.
        normalized: The five fields handed to croniter: aliases expanded, numbers
            without leading zeros, names in upper case, and ranges or steps that
            select one value written as that value (``9-9`` and ``59/15`` become
            ``9`` and ``59``). A field that starts with ``*`` keeps its ``*``.
        timezone: IANA name of the zone, such as "Europe/Paris".
    """

    expression: str
    normalized: str
    timezone: str

    @property
    def fixed_time(self) -> bool:
        """True if neither the minute nor the hour field starts with ``*``.

        cron's daylight-saving rules tell the two kinds apart: a fixed-time job
        (``30 2 * * *``) catches up a time that a clock change skipped and runs
        once in a repeated hour. Any other job follows real time.
        """
        fields = self.normalized.split(" ")
        return not (fields[_MINUTE].startswith("*") or fields[_HOUR].startswith("*"))

    @property
    def day_or(self) -> bool:
        """True if a day matches when day-of-month OR day-of-week matches.

        As in cron, that is the case when neither field starts with ``*``. Otherwise
        both must match (``0 0 */2 * 1`` is odd-numbered days that are Mondays).
        """
        fields = self.normalized.split(" ")
        return _days_match_either(fields[_DAY_OF_MONTH], fields[_DAY_OF_WEEK])


def _days_match_either(day_of_month: str, day_of_week: str) -> bool:
    return not (day_of_month.startswith("*") or day_of_week.startswith("*"))


@dataclass(frozen=True)
class _ParsedField:
    text: str
    values: frozenset[int]
    last_day: bool = False
    nth_week: int | None = None


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]
    #: Upper end of ``*`` and ``N/S``. Only day-of-week differs from `high`, because
    #: croniter reads both as ending on Saturday (6) and 7 is an alias of Sunday.
    step_high: int


_SPECS = (
    _FieldSpec("minute", 0, 59, {}, 59),
    _FieldSpec("hour", 0, 23, {}, 23),
    _FieldSpec("day-of-month", 1, 31, {}, 31),
    _FieldSpec("month", 1, 12, _MONTH_NAMES, 12),
    _FieldSpec("day-of-week", 0, 7, _DAY_NAMES, 6),
)
_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK = range(5)

_TOKEN = r"[0-9]+|[a-z]+"
_ITEM_RE = re.compile(
    rf"(?P<start>\*|{_TOKEN})(?:-(?P<end>{_TOKEN}))?(?:/(?P<step>[0-9]+))?",
    re.ASCII | re.IGNORECASE,
)
_NTH_RE = re.compile(rf"(?P<day>{_TOKEN})#(?P<week>[0-9]+)", re.ASCII | re.IGNORECASE)
_FIELD_SEPARATOR_RE = re.compile(r"[ \t]+")
#: Whitespace that does not separate fields, such as a no-break space.
_OTHER_WHITESPACE_RE = re.compile(r"[^\S \t]")


# --- Validation ---------------------------------------------------------------


def validate(expression: str, timezone: str | None = None) -> CronSchedule:
    """Check a cron expression and a time zone, and return the schedule.

    The expression has five fields (minute hour day-of-month month day-of-week) or
    is one of the `ALIASES`. `timezone` is an IANA name, matched without regard to
    case. None means this machine's zone (see `local_zone_name()`).

    Raises:
        InvalidScheduleError: The error names the field and the value that failed.
    """
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a str, got {expression!r}")
    stripped = expression.strip()
    normalized = _normalize(stripped)
    zone_name = _check_zone_name(local_zone_name() if timezone is None else timezone)
    return CronSchedule(expression=stripped, normalized=normalized, timezone=zone_name)


def _normalize(expression: str) -> str:
    if not expression:
        raise InvalidScheduleError(
            "expression",
            expression,
            "invalid cron expression '': enter five fields, such as '0 9 * * *', "
            "or an alias such as @daily",
        )
    if expression.startswith("@"):
        alias = ALIASES.get(expression.lower())
        if alias is None:
            raise InvalidScheduleError(
                "expression",
                expression,
                f"invalid cron expression {expression!r}: unknown alias. Use one of "
                f"{', '.join(ALIASES)}, or write the five fields",
            )
        expression = alias

    texts = _FIELD_SEPARATOR_RE.split(expression)
    if len(texts) != len(FIELD_NAMES):
        extra = ""
        if len(texts) > len(FIELD_NAMES):
            extra = ". Seconds and years are not supported, so remove the extra fields"
        elif _OTHER_WHITESPACE_RE.search(expression):
            extra = ". Separate the fields with spaces or tabs"
        raise InvalidScheduleError(
            "expression",
            expression,
            f"invalid cron expression {expression!r}: expected 5 fields "
            f"({' '.join(FIELD_NAMES)}), got {len(texts)}{extra}",
        )
    return _parse_fields(expression, tuple(texts))[1]


@lru_cache(maxsize=256)
def _parse_fields(
    expression: str, texts: tuple[str, ...]
) -> tuple[tuple[_ParsedField, ...], str]:
    fields = tuple(
        _parse_field(spec, text, expression)
        for spec, text in zip(_SPECS, texts, strict=True)
    )
    _check_dates_occur(expression, fields, texts)
    return fields, " ".join(field.text for field in fields)


def _parse_field(spec: _FieldSpec, text: str, expression: str) -> _ParsedField:
    lowered = text.lower()
    if spec.name == "day-of-month" and "l" in lowered:
        if lowered != "l":
            raise _field_error(
                spec,
                text,
                expression,
                "L (the last day of the month) must be the whole day-of-month field",
            )
        return _ParsedField("L", frozenset(), last_day=True)
    if spec.name == "day-of-week" and "#" in lowered:
        return _parse_nth_weekday(spec, text, expression)

    items = [_parse_item(spec, item, text, expression) for item in text.split(",")]
    values = frozenset().union(*(item_values for _, item_values in items))
    if spec.name == "day-of-week":
        values = frozenset(0 if value == 7 else value for value in values)
    return _ParsedField(",".join(item_text for item_text, _ in items), values)


def _parse_item(
    spec: _FieldSpec, item: str, field_text: str, expression: str
) -> tuple[str, frozenset[int]]:
    """Parse one list item of a field into its canonical text and its values."""
    match = _ITEM_RE.fullmatch(item)
    if match is None:
        raise _field_error(spec, item or field_text, expression, _syntax_hint(spec))
    start_text, end_text, step_text = match.group("start", "end", "step")
    step = 1
    if step_text is not None:
        step = _parse_number(step_text)
        if step == 0:
            raise _field_error(
                spec, item, expression, "use a step of 1 or more, as in */5"
            )

    if start_text == "*":
        if end_text is not None:
            raise _field_error(spec, item, expression, _syntax_hint(spec))
        values = range(spec.low, spec.step_high + 1, step)
        text = "*" if step_text is None else f"*/{step}"
        return text, frozenset(values)

    start = _parse_value(spec, start_text, expression)
    if end_text is None:
        # "N/S" runs from N to the end of the field, as croniter reads it.
        end = max(start, spec.step_high) if step_text is not None else start
    else:
        end = _parse_value(spec, end_text, expression)
        if spec.name == "day-of-week" and end == 0 and start > 0:
            # cron's one allowed wrap: a range that ends on Sunday (5-0, FRI-SUN).
            end = 7
        if start > end:
            hint = _reversed_range_hint(spec, start, end, start_text, end_text)
            raise _field_error(spec, item, expression, hint)

    values = frozenset(range(start, end + 1, step))
    if len(values) == 1:
        # croniter 7 reads an equal-bounds range ("9-9") as the whole field, so a
        # range or step that selects one value is handed over as that value.
        return _canonical_value(spec, start_text), values
    text = _canonical_value(spec, start_text)
    if end_text is not None:
        text += f"-{_canonical_value(spec, end_text)}"
    if step_text is not None:
        text += f"/{step}"
    return text, values


def _parse_nth_weekday(spec: _FieldSpec, text: str, expression: str) -> _ParsedField:
    match = _NTH_RE.fullmatch(text)
    hint = (
        "write one DAY#N as the whole day-of-week field, with N from 1 to 5, "
        "as in MON#2"
    )
    if match is None:
        raise _field_error(spec, text, expression, hint)
    day = _parse_value(spec, match.group("day"), expression)
    week = int(match.group("week"))
    if not 1 <= week <= 5:
        raise _field_error(spec, text, expression, hint)
    canonical = f"{_canonical_value(spec, match.group('day'))}#{week}"
    return _ParsedField(canonical, frozenset({day % 7}), nth_week=week)


def _parse_number(digits: str) -> int:
    # Any number of more than four digits is past every field, and int() rejects
    # strings of more than 4300 digits, so such numbers become 10000.
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 4 else 10_000


def _parse_value(spec: _FieldSpec, token: str, expression: str) -> int:
    if token.isdigit():
        value = _parse_number(token)
        if not spec.low <= value <= spec.high:
            hint = f"use a value from {spec.low} to {spec.high}{_names_hint(spec)}"
            raise _field_error(spec, token, expression, hint)
        return value
    if token.lower() in spec.names:
        return spec.names[token.lower()]
    raise _field_error(spec, token, expression, _syntax_hint(spec))


def _canonical_value(spec: _FieldSpec, token: str) -> str:
    if token.isdigit():
        return token.lstrip("0") or "0"
    return token.upper()


def _check_dates_occur(
    expression: str, fields: tuple[_ParsedField, ...], texts: tuple[str, ...]
) -> None:
    """Raise unless some day in the schedule's months can match day-of-month.

    croniter accepts ``0 0 31 2 *`` and then fails to find a next time. Under the OR
    rule (``0 0 31 2 0``) day-of-week alone still fires, so only the AND case
    needs a date that exists. A DAY#N day-of-week also limits the days of the
    month to its week (days 8 to 14 for #2).
    """
    if _days_match_either(texts[_DAY_OF_MONTH], texts[_DAY_OF_WEEK]):
        return
    nth_week = fields[_DAY_OF_WEEK].nth_week
    if _some_day_occurs(fields[_DAY_OF_MONTH], fields[_MONTH], nth_week):
        return

    detail = ""
    if nth_week is not None:
        detail = f" in the week of day-of-week {texts[_DAY_OF_WEEK]!r}"
    longest = max(_MAX_MONTH_DAYS[number] for number in fields[_MONTH].values)
    raise _field_error(
        _SPECS[_DAY_OF_MONTH],
        texts[_DAY_OF_MONTH],
        expression,
        f"no such day exists in month {texts[_MONTH]!r}{detail}, so the schedule "
        f"would never run. Use days from 1 to {longest} in those months",
    )


def _some_day_occurs(
    day_of_month: _ParsedField, month: _ParsedField, nth_week: int | None
) -> bool:
    for number in month.values:
        longest = _MAX_MONTH_DAYS[number]
        if day_of_month.last_day:
            days = {28, 29} if number == 2 else {longest}
        else:
            days = {day for day in day_of_month.values if day <= longest}
        if nth_week is not None:
            days = {day for day in days if 7 * nth_week - 6 <= day <= 7 * nth_week}
        if days:
            return True
    return False


def _field_error(
    spec: _FieldSpec, value: str, expression: str, fix: str
) -> InvalidScheduleError:
    return InvalidScheduleError(
        spec.name,
        value,
        f"invalid {spec.name} {value!r} in cron expression {expression!r}: {fix}",
    )


def _names_hint(spec: _FieldSpec) -> str:
    if spec.name == "month":
        return " or a name from JAN to DEC"
    if spec.name == "day-of-week":
        return " (0 and 7 are Sunday) or a name from SUN to SAT"
    return ""


def _syntax_hint(spec: _FieldSpec) -> str:
    extra = {
        "day-of-month": ", or L for the last day of the month",
        "day-of-week": ", or one DAY#N such as MON#2",
    }.get(spec.name, "")
    return (
        f"use values from {spec.low} to {spec.high}{_names_hint(spec)}, '*', lists "
        f"(1,5), ranges (1-5) and steps (*/15 or 1-30/5){extra}"
    )


def _reversed_range_hint(
    spec: _FieldSpec, start: int, end: int, start_text: str, end_text: str
) -> str:
    """Suggest the ordered range and the two ranges that cover the wrap."""
    first = _canonical_value(spec, start_text)
    last = _canonical_value(spec, end_text)
    by_name = not start_text.isdigit()
    if spec.name == "day-of-week":
        # The only allowed wrap ends on Sunday, so the week splits after Sunday.
        top, bottom = ("SUN", "MON") if by_name else ("0", "1")
        top_value, bottom_value = 7, 1
    else:
        top, bottom = str(spec.high), str(spec.low)
        top_value, bottom_value = spec.high, spec.low
        if by_name:
            names = sorted(spec.names, key=spec.names.__getitem__)
            top, bottom = names[-1].upper(), names[0].upper()
    upper_part = first if start == top_value else f"{first}-{top}"
    lower_part = last if end == bottom_value else f"{bottom}-{last}"
    return (
        f"write the lower bound first, as in {last}-{first}, or split the range "
        f"where it wraps, as in {upper_part},{lower_part}"
    )


# --- Time zones ---------------------------------------------------------------


def local_zone_name() -> str:
    """Return the IANA name of this machine's time zone, or "UTC" if none is found.

    Reads, in order, the TZ environment variable, the target of the /etc/localtime
    link (Linux, macOS) and /etc/timezone (Debian). A candidate counts only if it is
    a known IANA name.

    NOTE: Windows has none of these sources, so this returns "UTC" there.
    """
    readers = (_zone_from_tz_variable, _zone_from_localtime_link, _zone_from_file)
    for read_candidate in readers:
        candidate = read_candidate()
        if candidate is None:
            continue
        name = _canonical_zone_name(candidate)
        if name is not None:
            return name
    return "UTC"


def _zone_from_tz_variable() -> str | None:
    value = os.environ.get("TZ", "").strip().removeprefix(":")
    if not value:
        return None
    if value.startswith("/"):
        return _zone_name_in_path(value)
    return value


def _zone_from_localtime_link() -> str | None:
    try:
        target = os.readlink(_LOCALTIME_PATH)
    except OSError:
        return None
    return _zone_name_in_path(target)


def _zone_from_file() -> str | None:
    try:
        return _TIMEZONE_FILE_PATH.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _zone_name_in_path(path: str) -> str | None:
    """Return the zone name after ``zoneinfo/`` in a zone file's path."""
    marker = "zoneinfo/"
    index = path.rfind(marker)
    if index < 0:
        return None
    name = path[index + len(marker) :]
    for variant in ("posix/", "right/"):
        name = name.removeprefix(variant)
    return name or None


@lru_cache(maxsize=1)
def _zone_names_by_casefold() -> dict[str, str]:
    # "localtime" is this machine's own zone file, present on Debian, not a zone name.
    names = zoneinfo.available_timezones() - {"localtime"}
    return {name.casefold(): name for name in names}


def _canonical_zone_name(name: str) -> str | None:
    return _zone_names_by_casefold().get(name.strip().casefold())


def _check_zone_name(name: object) -> str:
    canonical = _canonical_zone_name(name) if isinstance(name, str) else None
    if canonical is None:
        raise InvalidScheduleError(
            "timezone",
            str(name),
            f"invalid timezone {name!r}: use an IANA time zone name, such as "
            "'Europe/Paris', 'America/New_York' or 'UTC'",
        )
    try:
        zoneinfo.ZoneInfo(canonical)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise InvalidScheduleError(
            "timezone",
            canonical,
            f"invalid timezone {canonical!r}: its zone file failed to load ({error}). "
            "Install the tzdata package or choose another zone",
        ) from error
    return canonical


# --- Fire times ---------------------------------------------------------------


def next_fires(
    schedule: CronSchedule, after: datetime, count: int = 1
) -> list[datetime]:
    """Return the next `count` fire times strictly after `after`, in order.

    `after` is an aware datetime in any zone. The results are aware datetimes in the
    schedule's zone, and they obey the daylight-saving rules of `fires_between()`.
    """
    after_utc = _as_utc(after, "after")
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    fires: list[datetime] = []
    if count == 0:
        return fires
    for instant in _fire_instants(schedule, zone, after_utc):
        fires.append(instant.astimezone(zone))
        if len(fires) == count:
            break
    return fires


def fires_between(
    schedule: CronSchedule, start: datetime, end: datetime, limit: int = 1000
) -> list[datetime]:
    """Return the fire times t with start < t <= end, in order, at most `limit`.

    Used to list the runs missed while the machine slept or the scheduler was down.
    The results are aware UTC datetimes, each instant once, and the first `limit`
    are kept: call again from the last one to page through a longer outage.

    Daylight-saving rules, as in cronie and Debian's cron:

    - A fixed-time job (see `CronSchedule.fixed_time`) whose time does not exist
      that day runs at the first existing minute after it: ``30 2 * * *`` in
      New York on 2024-03-10 runs at 03:00. In a repeated hour it runs once, in the
      first pass: 01:30-04:00 on 2024-11-03.
    - Any other job runs in real time. It has no runs in the skipped hour, and runs
      in both passes of a repeated hour (01:30-04:00, then 01:30-05:00).
    """
    start_utc = _as_utc(start, "start")
    end_utc = _as_utc(end, "end")
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    fires: list[datetime] = []
    if limit == 0 or end_utc <= start_utc:
        return fires
    for instant in _fire_instants(schedule, zone, start_utc):
        if instant > end_utc:
            break
        fires.append(instant)
        if len(fires) == limit:
            break
    return fires


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{name}={moment.isoformat()} is a naive datetime: pass an aware one, "
            "such as datetime.now(UTC)"
        )
    return moment.astimezone(UTC)


def _fire_instants(
    schedule: CronSchedule, zone: zoneinfo.ZoneInfo, after_utc: datetime
) -> Iterator[datetime]:
    """Yield the fire instants after `after_utc` in UTC, in order, each once."""
    walls = _wall_times(schedule, _walk_start(after_utc, zone))
    previous = None
    for instant in _instants_of_wall_times(walls, zone, schedule.fixed_time):
        # Instants repeat when both day fields match one day, or when catch-up runs
        # and real runs meet: with ``0,30 2,3 * * *``, 02:00, 02:30 and 03:00 all
        # run at 03:00 on a spring-forward day.
        if instant <= after_utc or instant == previous:
            continue
        previous = instant
        yield instant


def _walk_start(after_utc: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Return the wall-clock time from which croniter walks for fires after `after_utc`.

    A clock that is set back shows earlier readings later: at 01:45-04:00 on
    2024-11-03 in New York, 01:00-05:00 is still to come. So the walk starts earlier
    by the largest drop of the UTC offset in the coming `_MAX_OFFSET_JUMP`.
    """
    local = after_utc.astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    samples = int(_MAX_OFFSET_JUMP / _OFFSET_SAMPLE_STEP)
    lowest = offset
    for index in range(1, samples + 1):
        sample = (after_utc + index * _OFFSET_SAMPLE_STEP).astimezone(zone).utcoffset()
        assert sample is not None
        lowest = min(lowest, sample)
    return local.replace(tzinfo=None) - (offset - lowest)


def _wall_times(schedule: CronSchedule, start: datetime) -> Iterator[datetime]:
    """Yield the naive wall-clock times that match the schedule after `start`.

    A time that both expressions of `_walk_expressions` match comes twice.
    """
    streams = [_croniter_times(text, start) for text in _walk_expressions(schedule)]
    return heapq.merge(*streams)


def _walk_expressions(schedule: CronSchedule) -> tuple[str, ...]:
    """Return the expressions to walk with croniter, whose union is the schedule.

    When a day matches on either field (`CronSchedule.day_or`), the two fields are
    walked apart: croniter 7 fails to find any time for ``0 9 1 * MON#2``, and a
    day-of-month that never occurs (``31 2``) has to drop out of the union.
    """
    texts = tuple(schedule.normalized.split(" "))
    if not schedule.day_or:
        return (schedule.normalized,)
    minute, hour, day_of_month, month, day_of_week = texts
    fields, _ = _parse_fields(schedule.normalized, texts)
    expressions = [f"{minute} {hour} * {month} {day_of_week}"]
    if _some_day_occurs(fields[_DAY_OF_MONTH], fields[_MONTH], None):
        expressions.append(f"{minute} {hour} {day_of_month} {month} *")
    return tuple(expressions)


def _croniter_times(expression: str, start: datetime) -> Iterator[datetime]:
    # A naive start makes croniter walk the calendar with no DST handling, which is
    # left to `_instants_of_wall_times`. implement_cron_bug=True makes croniter AND
    # the day fields when either starts with "*", as cron does.
    iterator = croniter(expression, start, ret_type=datetime, implement_cron_bug=True)
    while True:
        try:
            yield iterator.get_next(datetime)
        except CroniterBadDateError:
            # No match within croniter's 50-year search window.
            return


def _instants_of_wall_times(
    walls: Iterator[datetime], zone: zoneinfo.ZoneInfo, fixed_time: bool
) -> Iterator[datetime]:
    """Yield the UTC instants of ordered wall-clock times, in order.

    The first instant of each wall time never decreases along the walk. A second
    pass comes after first passes that the walk meets later (01:30-04:00 comes
    before 01:00-05:00), so second passes wait in a heap until the walk's first
    instants overtake them.
    """
    second_passes: list[datetime] = []
    for wall in walls:
        first, second = _resolve_wall_time(wall, zone, fixed_time)
        if first is None:
            continue
        while second_passes and second_passes[0] <= first:
            yield heapq.heappop(second_passes)
        yield first
        if second is not None:
            heapq.heappush(second_passes, second)
    while second_passes:
        yield heapq.heappop(second_passes)


def _resolve_wall_time(
    wall: datetime, zone: zoneinfo.ZoneInfo, fixed_time: bool
) -> tuple[datetime | None, datetime | None]:
    """Return the first and second-pass UTC instants at which `wall` fires.

    Either can be None: the first when a real-time job's wall time does not exist,
    the second unless the wall time repeats and the job follows real time.
    """
    earlier = wall.replace(tzinfo=zone, fold=0)
    if not _exists(earlier, zone):
        if not fixed_time:
            return None, None
        return _first_existing_minute(wall, zone), None
    first = earlier.astimezone(UTC)
    later = wall.replace(tzinfo=zone, fold=1)
    if fixed_time or later.utcoffset() == earlier.utcoffset():
        return first, None
    return first, later.astimezone(UTC)


def _exists(local: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    round_trip = local.astimezone(UTC).astimezone(zone)
    return round_trip.replace(tzinfo=None) == local.replace(tzinfo=None)


def _first_existing_minute(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    candidate = wall
    for _ in range(int(_MAX_OFFSET_JUMP / timedelta(minutes=1))):
        candidate += timedelta(minutes=1)
        local = candidate.replace(tzinfo=zone)
        if _exists(local, zone):
            return local.astimezone(UTC)
    raise RuntimeError(f"no existing time in {zone.key} within 2 days after {wall}")


# --- Descriptions -------------------------------------------------------------


def describe(schedule: CronSchedule) -> str:
    """Describe a validated schedule in English, such as "At 09:00, only on Monday".

    Times are in 24-hour form. cron-descriptor writes the text, but the link
    between the day fields follows `CronSchedule.day_or`: cron-descriptor 2.2
    joins them with "or" whenever day-of-month is not ``*``.

    NOTE: cron-descriptor takes month and weekday names from the process's
    LC_TIME locale, so they are not English once the program calls setlocale().
    """
    if not isinstance(schedule, CronSchedule):
        raise TypeError(
            f"describe() takes a CronSchedule from validate(), got {schedule!r}"
        )
    fields = schedule.normalized.split(" ")
    descriptor = _descriptor(schedule.normalized)
    time_text = descriptor.get_description(DescriptionTypeEnum.TIMEOFDAY)
    day_of_month_text = descriptor.get_description(DescriptionTypeEnum.DAYOFMONTH)
    month_text = descriptor.get_description(DescriptionTypeEnum.MONTH)

    if schedule.day_or:
        day_of_week_text = descriptor.get_description(DescriptionTypeEnum.DAYOFWEEK)
        if not day_of_week_text.startswith(", or "):
            # The DAY#N text (", on the second Monday of the month") has no "or".
            day_of_week_text = ", or " + day_of_week_text.removeprefix(", ")
    else:
        # cron-descriptor would join the day fields with "or". Day-of-week described
        # as if day-of-month were "*" reads as a further condition (", only on Monday").
        fields[_DAY_OF_MONTH] = "*"
        day_of_week_text = _descriptor(" ".join(fields)).get_description(
            DescriptionTypeEnum.DAYOFWEEK
        )

    text = time_text + day_of_month_text + day_of_week_text + month_text
    text = descriptor.transform_verbosity(text, use_verbose_format=False)
    return ExpressionDescriptor.transform_case(text, CasingTypeEnum.Sentence)


def _descriptor(expression: str) -> ExpressionDescriptor:
    # An explicit locale: Options() warns when the process has no locale set.
    options = Options(locale_code="en_US", use_24hour_time_format=True)
    return ExpressionDescriptor(expression, options)
