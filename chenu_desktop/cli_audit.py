"""The ``chenu-desktop audit`` command: list the trail of operator actions."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import time
from typing import Any

from .audit.store import AuditAction, AuditEntry
from .cli import format_table, format_time, print_json, run_engine_command
from .engine import Engine
from .errors import InvalidArgumentError
from .services import MAX_PAGE

AUDIT_HEADERS = ("ID", "WHEN", "OPERATOR", "ACTION", "TARGET", "REASON", "DETAILS")
_ACTION_NAMES = ", ".join(action.value for action in AuditAction)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """Parse ``--since``: an age such as ``30m``, ``2h`` or ``7d``, or an ISO time.

    An ISO time without a zone is local time. Returns POSIX seconds.
    """
    value = text.strip()
    match = _DURATION.fullmatch(value.lower())
    if match is not None:
        amount, unit = match.groups()
        start = time.time() if now is None else now
        return start - float(amount) * _UNIT_SECONDS[unit]
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidArgumentError(
            f"invalid --since {text!r}: pass an age such as 30m, 2h or 7d, or a "
            "date or time such as 2026-03-01 or 2026-03-01T09:30"
        ) from None


def _details_text(entry: AuditEntry) -> str:
    if not entry.details:
        return "-"
    return " ".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}"
        for key, value in entry.details.items()
    )


def audit_list(engine: Engine, args: argparse.Namespace) -> None:
    if args.limit < 1 or args.limit > MAX_PAGE:
        raise InvalidArgumentError(
            f"invalid --limit {args.limit}: pass a number from 1 to {MAX_PAGE}"
        )
    filters: dict[str, Any] = {
        "action": args.action_name,
        "target": args.target,
        "operator": args.operator,
        "since": None if args.since is None else parse_since(args.since),
    }
    service = engine.audit
    entries = service.list_entries(**filters, limit=args.limit, offset=args.offset)
    total = service.count_entries(**filters)
    if args.json:
        print_json(
            {
                "total": total,
                "offset": args.offset,
                "limit": args.limit,
                "entries": [entry.to_dict() for entry in entries],
            }
        )
        return
    if not entries:
        if total:
            print(f"no audit entries at offset {args.offset}: {total} match in all")
        else:
            print("no audit entries match")
        return
    rows = [
        [
            str(entry.entry_id),
            format_time(entry.at),
            entry.operator,
            entry.action,
            f"{entry.target_kind} {entry.target}",
            entry.reason or "-",
            _details_text(entry),
        ]
        for entry in entries
    ]
    print(format_table(AUDIT_HEADERS, rows))
    print(f"entries {args.offset + 1}-{args.offset + len(entries)} of {total}")


def add_audit_parser(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="list operator actions, newest first",
        description="List the audit trail: every operator action (submit from the "
        "window or the command line, cancel, retry, approve, reject, cleanup, "
        "schedule edits, pool resize, pause and resume) with who, when, the "
        "target, the reason and the outcome. Newest first.",
    )
    audit.set_defaults(
        run=run_engine_command,
        action_handler=audit_list,
        default_level=logging.WARNING,
    )
    audit.add_argument(
        "--action",
        dest="action_name",
        choices=[action.value for action in AuditAction],
        metavar="ACTION",
        help=f"only this action: {_ACTION_NAMES}",
    )
    audit.add_argument(
        "--target", help="only this target: a task id, schedule name or queue name"
    )
    audit.add_argument("--operator", help="only actions of this operator name")
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help="only actions at or after an age such as 30m, 2h or 7d, or a local "
        "date or time such as 2026-03-01T09:30",
    )
    audit.add_argument(
        "--limit",
        type=int,
        default=50,
        help=f"entries to print, 1 to {MAX_PAGE} (default: 50)",
    )
    audit.add_argument(
        "--offset", type=int, default=0, help="entries to skip (default: 0)"
    )
    audit.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout"
    )
