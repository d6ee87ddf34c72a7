"""The ``chenu-desktop schedules`` commands: edit, run and preview cron schedules."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import logging
import time
import zoneinfo
from typing import Any

from . import cron
from .cli import (
    _add_action,
    _add_tasks_option,
    format_table,
    parse_assignments,
    parse_task_keywords,
    print_json,
    run_engine_command,
)
from .engine import Engine
from .errors import InvalidArgumentError
from .scheduling.service import ScheduleInfo, SchedulerService
from .scheduling.store import (
    MISFIRE_POLICIES,
    MISFIRE_RUN_ONCE,
    MISFIRE_SKIP,
    ScheduleEvent,
)

#: Maximum of ``schedules preview --count``, the limit of SchedulerService.preview.
MAX_PREVIEW_COUNT = 1000
#: Defaults of the options of `SchedulerService.add_schedule`, shown in the help.
_ADD_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(
        SchedulerService.add_schedule
    ).parameters.items()
}
#: Keywords of `SchedulerService.update_schedule` that set the schedule itself.
#: Other keywords change single task arguments, so a task argument with one of
#: these names can only be changed through ``task_kwargs``.
_UPDATE_OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(
        SchedulerService.update_schedule
    ).parameters.items()
    if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
)
_MISFIRE_NAMES = " or ".join(MISFIRE_POLICIES)

LIST_HEADERS = (
    "NAME", "TASK", "EXPRESSION", "DESCRIPTION", "ZONE", "ENABLED", "NEXT RUN",
    "LAST RUN", "LAST STATUS", "MISFIRE",
)  # fmt: skip
HISTORY_HEADERS = ("KIND", "FIRE TIME", "RECORDED AT", "TASK ID", "DETAIL")


# --- output ------------------------------------------------------------------


def format_relative(seconds: float) -> str:
    """Describe an offset from now, such as "in 3 min" or "2 h 5 min ago"."""
    size = abs(seconds)
    if size < 1:
        return "now"
    if size < 60:
        amount = f"{int(size)} s"
    else:
        minutes = round(size / 60)
        if minutes < 60:
            amount = f"{minutes} min"
        elif minutes < 24 * 60:
            hours, minutes = divmod(minutes, 60)
            amount = f"{hours} h" + (f" {minutes} min" if minutes else "")
        else:
            days, minutes = divmod(minutes, 24 * 60)
            hours = minutes // 60
            amount = f"{days} d" + (f" {hours} h" if hours else "")
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def format_zoned(moment: dt.datetime | None) -> str:
    """Format an aware datetime in its own zone, such as "2025-03-10 09:00 CET"."""
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def format_moment(moment: dt.datetime | None, now: float) -> str:
    """Format an aware datetime and its offset from `now` (POSIX seconds)."""
    if moment is None:
        return "-"
    return f"{format_zoned(moment)} ({format_relative(moment.timestamp() - now)})"


def schedule_row(info: ScheduleInfo, now: float) -> list[str]:
    return [
        info.name,
        info.task_name,
        info.expression,
        info.description,
        info.timezone,
        "yes" if info.enabled else "no",
        format_moment(info.next_run, now),
        format_moment(info.last_run, now),
        info.last_status.value if info.last_status else "-",
        info.misfire,
    ]


def print_change(info: ScheduleInfo, verb: str, now: float) -> None:
    """Print one line: what changed, when the schedule runs next and its approver."""
    if not info.enabled:
        when = "disabled"
    elif info.next_run is None:
        when = "no next run"
    else:
        when = f"next run {format_moment(info.next_run, now)}"
    line = f"schedule {info.name} {verb}: {info.description} ({info.timezone}), {when}"
    if info.approved_by:
        line += f", runs approved by {info.approved_by}"
    print(line)


def _zoned(timestamp: float | None, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, zone)


def event_to_dict(event: ScheduleEvent, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """Return the event's fields, with times as ISO 8601 text in `zone`."""
    data = dataclasses.asdict(event)
    for key in ("fire_at", "at"):
        moment = _zoned(data[key], zone)
        data[key] = moment.isoformat() if moment is not None else None
    return data


# --- arguments ---------------------------------------------------------------


def default_approver(
    engine: Engine, task_name: str, approved_by: str | None
) -> str | None:
    """Return `approved_by`, else the operator name if the task requires approval.

    An unregistered task gets no default, so the service reports the unknown
    name in its usual order of checks.
    """
    if approved_by is not None:
        return approved_by
    definition = engine.registry.find(task_name)
    if definition is not None and definition.requires_governance:
        return engine.config.operator_name
    return None


def parse_single_changes(items: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` items that change single task arguments on update."""
    changes = parse_assignments(items)
    for key in changes:
        if key in _UPDATE_OPTIONS:
            raise InvalidArgumentError(
                f"task argument {key!r} has the name of a schedule option, so "
                "KEY=VALUE cannot change it alone: pass all of the task's "
                "arguments in --kwargs-json, which replaces them"
            )
    return changes


def parse_after(text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """Parse ``--after``, reading a date and time without an offset in `zone`."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            f"invalid --after {text!r}: pass an ISO 8601 date and time, such as "
            "2025-03-30T01:30 or 2025-03-30T01:30+01:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


# --- schedules commands ------------------------------------------------------


def schedules_list(engine: Engine, args: argparse.Namespace) -> None:
    schedules = engine.scheduler_service.list_schedules()
    if args.json:
        print_json([info.to_dict() for info in schedules])
        return
    if not schedules:
        print("no schedules: add one with `chenu-desktop schedules add`")
        return
    now = engine.clock()
    print(format_table(LIST_HEADERS, [schedule_row(info, now) for info in schedules]))


def schedules_add(engine: Engine, args: argparse.Namespace) -> None:
    info = engine.scheduler_service.add_schedule(
        args.name,
        args.task_name,
        args.expression,
        timezone=args.timezone,
        misfire=args.misfire,
        grace_seconds=args.grace_seconds,
        enabled=not args.disabled,
        approved_by=default_approver(engine, args.task_name, args.approved_by),
        task_kwargs=parse_task_keywords(args.kwargs_json, args.assignments),
    )
    if args.json:
        print_json(info.to_dict())
    else:
        print_change(info, "added", engine.clock())


def schedules_update(engine: Engine, args: argparse.Namespace) -> None:
    options = {
        "schedule": args.schedule,
        "timezone": args.timezone,
        "task_name": args.task,
        "misfire": args.misfire,
        "grace_seconds": args.grace_seconds,
        "approved_by": args.approved_by,
    }
    nothing_given = (
        all(value is None for value in options.values())
        and args.kwargs_json is None
        and not args.assignments
    )
    if nothing_given:
        raise InvalidArgumentError(
            f"nothing to update for schedule {args.name!r}: pass --schedule, "
            "--timezone, --task, --misfire, --grace-seconds, --approved-by, "
            "--kwargs-json or KEY=VALUE"
        )
    changes: dict[str, Any] = {}
    if args.kwargs_json is not None:
        options["task_kwargs"] = parse_task_keywords(args.kwargs_json, args.assignments)
    else:
        changes = parse_single_changes(args.assignments)
    info = engine.scheduler_service.update_schedule(args.name, **options, **changes)
    if args.json:
        print_json(info.to_dict())
    else:
        print_change(info, "updated", engine.clock())


def schedules_remove(engine: Engine, args: argparse.Namespace) -> None:
    engine.scheduler_service.remove_schedule(args.name)
    if args.json:
        print_json({"removed": args.name})
    else:
        print(f"schedule {args.name} removed")


def schedules_enable(engine: Engine, args: argparse.Namespace) -> None:
    service = engine.scheduler_service
    approver = args.approved_by
    if approver is None:
        task_name = service.get_schedule(args.name).task_name
        approver = default_approver(engine, task_name, None)
    info = service.enable_schedule(args.name, approver)
    if args.json:
        print_json(info.to_dict())
    else:
        print_change(info, "enabled", engine.clock())


def schedules_disable(engine: Engine, args: argparse.Namespace) -> None:
    info = engine.scheduler_service.disable_schedule(args.name)
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"schedule {info.name} disabled")


def schedules_run(engine: Engine, args: argparse.Namespace) -> None:
    task_id = engine.scheduler_service.run_now(args.name)
    if args.json:
        print_json({"task_id": task_id, "schedule": args.name})
    else:
        print(task_id)


def schedules_history(engine: Engine, args: argparse.Namespace) -> None:
    service = engine.scheduler_service
    events = service.history(args.name, args.limit)
    zone = zoneinfo.ZoneInfo(service.get_schedule(args.name).timezone)
    if args.json:
        print_json([event_to_dict(event, zone) for event in events])
        return
    if not events:
        print(f"no history for schedule {args.name} yet")
        return
    rows = [
        [
            event.kind,
            format_zoned(_zoned(event.fire_at, zone)),
            format_zoned(_zoned(event.at, zone)),
            event.task_id or "-",
            event.detail or "-",
        ]
        for event in events
    ]
    print(format_table(HISTORY_HEADERS, rows))


def run_preview(args: argparse.Namespace) -> int:
    """Describe an expression and list its next fires, without opening the backend."""
    count = args.count
    if not 1 <= count <= MAX_PREVIEW_COUNT:
        raise InvalidArgumentError(
            f"invalid --count {count}: pass 1 to {MAX_PREVIEW_COUNT}"
        )
    schedule = cron.validate(args.expression, args.timezone)
    zone = zoneinfo.ZoneInfo(schedule.timezone)

    now = time.time()
    if args.after is None:
        after = dt.datetime.fromtimestamp(now, zone)
    else:
        after = parse_after(args.after, zone)
    fires = cron.next_fires(schedule, after, count)
    description = cron.describe(schedule)

    if args.json:
        print_json(
            {
                "expression": schedule.expression,
                "timezone": schedule.timezone,
                "description": description,
                "after": after.isoformat(),
                "runs": [fire.isoformat() for fire in fires],
            }
        )
        return 0
    print(f"{description} ({schedule.timezone})")
    for fire in fires:
        print(f"{fire:%a} {format_moment(fire, now)}")
    return 0


# --- parser ------------------------------------------------------------------


def _add_misfire_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    misfire_default = f" (default: {_ADD_DEFAULTS['misfire']})" if defaults else ""
    grace_default = (
        f" (default: {_ADD_DEFAULTS['grace_seconds']:g})" if defaults else ""
    )
    parser.add_argument(
        "--misfire",
        default=_ADD_DEFAULTS["misfire"] if defaults else None,
        metavar="POLICY",
        help=f"{_MISFIRE_NAMES}: after downtime, {MISFIRE_SKIP} only records the "
        f"missed fires and {MISFIRE_RUN_ONCE} also runs one catch-up"
        f"{misfire_default}",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=_ADD_DEFAULTS["grace_seconds"] if defaults else None,
        metavar="SECONDS",
        help="with run_once, the maximum age in seconds of the newest missed fire "
        f"for the catch-up to run{grace_default}",
    )


def _add_task_argument_options(
    parser: argparse.ArgumentParser, assignments_help: str, kwargs_help: str
) -> None:
    parser.add_argument(
        "assignments", nargs="*", metavar="KEY=VALUE", help=assignments_help
    )
    parser.add_argument("--kwargs-json", metavar="JSON", help=kwargs_help)


def _add_approver_option(
    parser: argparse.ArgumentParser, purpose: str, default: str
) -> None:
    parser.add_argument(
        "--approved-by",
        metavar="NAME",
        help=f"{purpose}, for a task that requires approval (default: {default})",
    )


def add_schedules_parser(commands: Any) -> None:
    schedules = commands.add_parser(
        "schedules",
        help="list, add, update, remove, enable, disable, run and preview schedules",
        description="Work with the cron schedules stored on the backend. Workers "
        "fire them on the scheduled queue.",
    )
    schedules.set_defaults(run=run_engine_command, default_level=logging.WARNING)
    actions = schedules.add_subparsers(dest="action", required=True, metavar="ACTION")
    zone_help = "IANA time zone of the expression, such as Europe/Paris"
    expression_help = (
        "five cron fields in quotes, such as '0 9 * * mon-fri', or an alias "
        "such as @daily"
    )
    operator_default = "operator from the configuration, else the OS user"

    _add_action(
        actions,
        "list",
        schedules_list,
        "list schedules with their next and last runs",
    )

    add = _add_action(actions, "add", schedules_add, "add a cron schedule for a task")
    add.add_argument("name", metavar="NAME", help="a new schedule name")
    add.add_argument(
        "task_name", metavar="TASK", help="the registered task to submit at each fire"
    )
    add.add_argument("expression", metavar="EXPRESSION", help=expression_help)
    _add_task_argument_options(
        add,
        "the task's keyword arguments, decoded as by `tasks submit`",
        "the task's keyword arguments as a JSON object",
    )
    add.add_argument(
        "--timezone",
        metavar="ZONE",
        help=f"{zone_help} (default: this machine's zone)",
    )
    _add_misfire_options(add, defaults=True)
    add.add_argument(
        "--disabled",
        action="store_true",
        help="store the schedule disabled, so it runs only after `enable`",
    )
    _add_approver_option(
        add, "name recorded as the approver of every run", operator_default
    )
    _add_tasks_option(add, "so TASK and its arguments can be checked")

    update = _add_action(
        actions,
        "update",
        schedules_update,
        "change a schedule, computing its next run from now",
    )
    update.add_argument("name", metavar="NAME")
    _add_task_argument_options(
        update,
        "change single task arguments and keep the others",
        "replace all of the task's keyword arguments with this JSON object",
    )
    update.add_argument(
        "--schedule", metavar="EXPRESSION", help="a new cron expression"
    )
    update.add_argument("--timezone", metavar="ZONE", help=zone_help)
    update.add_argument(
        "--task",
        metavar="TASK",
        help="submit this task instead, with no arguments unless KEY=VALUE or "
        "--kwargs-json gives them",
    )
    _add_misfire_options(update, defaults=False)
    _add_approver_option(
        update,
        "name recorded as the approver of every run from now on",
        "keep the current approver",
    )
    _add_tasks_option(update, "so the task and its arguments can be checked")

    remove = _add_action(
        actions, "remove", schedules_remove, "delete a schedule and its history"
    )
    remove.add_argument("name", metavar="NAME")

    enable = _add_action(
        actions,
        "enable",
        schedules_enable,
        "enable a schedule, skipping the fires missed while it was disabled",
    )
    enable.add_argument("name", metavar="NAME")
    _add_approver_option(
        enable, "name recorded as the approver of every run", operator_default
    )
    _add_tasks_option(enable, "to register the schedule's task")

    disable = _add_action(
        actions, "disable", schedules_disable, "stop a schedule until it is enabled"
    )
    disable.add_argument("name", metavar="NAME")

    run = _add_action(
        actions,
        "run",
        schedules_run,
        "submit a schedule's task now and print the task id",
    )
    run.add_argument("name", metavar="NAME")
    _add_tasks_option(run, "to register the schedule's task")

    history = _add_action(
        actions,
        "history",
        schedules_history,
        "list a schedule's fires, misses and failures, newest first",
    )
    history.add_argument("name", metavar="NAME")
    history.add_argument(
        "--limit", type=int, default=50, help="entries to show (default: 50)"
    )

    preview = actions.add_parser(
        "preview",
        help="describe a cron expression and list its next runs",
        description="Describe a cron expression and list its next runs. Needs no "
        "backend.",
    )
    preview.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout"
    )
    preview.add_argument("expression", metavar="EXPRESSION", help=expression_help)
    preview.add_argument(
        "--timezone",
        metavar="ZONE",
        help=f"{zone_help} (default: this machine's zone)",
    )
    preview.add_argument(
        "--count",
        type=int,
        default=5,
        metavar="N",
        help=f"runs to list, 1 to {MAX_PREVIEW_COUNT} (default: 5)",
    )
    preview.add_argument(
        "--after",
        metavar="ISO-DATETIME",
        help="list the runs after this time instead of after now, reading a time "
        "without an offset in ZONE",
    )
    preview.set_defaults(run=run_preview)
