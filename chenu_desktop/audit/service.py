"""The audit service: record operator actions and list them."""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailableError, InvalidArgumentError
from ..services import check_page, wrap_backend_errors
from .store import AuditAction, AuditEntry, AuditFilter, AuditStore

if TYPE_CHECKING:
    from ..engine import Engine

logger = logging.getLogger("chenu.audit")


class AuditWriteError(BackendUnavailableError):
    """The action took effect, but its audit entry could not be stored.

    Attributes:
        entry: The entry that is missing from the trail; the log has it too.
        result: What the action returned, such as the new id of a retry.
    """

    def __init__(self, message: str, entry: AuditEntry, result: Any) -> None:
        super().__init__(message)
        self.entry = entry
        self.result = result


@wrap_backend_errors
class AuditService:
    """The audit trail of an engine. Safe to call from any thread but a GUI's."""

    def __init__(self, engine: Engine, store: AuditStore) -> None:
        self._engine = engine
        self._store = store
        self.backend_display = engine.spec.display

    # --- recording ---------------------------------------------------------

    def record(
        self,
        action: AuditAction,
        target_kind: str,
        target: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        result: Any = None,
    ) -> AuditEntry:
        """Append the entry of an action that has taken effect; return it stored.

        Callers record after the action, so a failed action leaves no entry.
        A failed write does not undo the action. The entry goes to the log at
        ERROR level, and `AuditWriteError` reports both facts and carries
        `result` for callers that need it.
        """
        entry = AuditEntry(
            entry_id=0,
            at=self._engine.clock(),
            operator=self._engine.config.operator_name,
            action=AuditAction(action).value,
            target_kind=target_kind,
            target=target,
            reason=reason,
            details=dict(details or {}),
        )
        try:
            return self._store.append(entry)
        except Exception as exc:
            logger.error(
                "storing the audit entry of %s on %s %s failed (%s); the entry: %s",
                entry.action,
                target_kind,
                target,
                exc,
                entry.to_json(),
            )
            raise AuditWriteError(
                f"{entry.action} of {target_kind} {target!r} took effect, but storing "
                f"its audit entry on {self.backend_display} failed ({exc}); the entry "
                "is in the log; do not repeat the action",
                entry,
                result,
            ) from exc

    # --- reading -----------------------------------------------------------

    def list_entries(
        self,
        action: AuditAction | str | None = None,
        target: str | None = None,
        operator: str | None = None,
        since: dt.datetime | float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Return one page of entries, newest first; each filter given must match.

        Raises:
            InvalidArgumentError: A filter, the limit or the offset is invalid.
        """
        entry_filter = self.make_filter(action, target, operator, since)
        check_page(limit, offset)
        return self._store.list_entries(entry_filter, limit, offset)

    def count_entries(
        self,
        action: AuditAction | str | None = None,
        target: str | None = None,
        operator: str | None = None,
        since: dt.datetime | float | None = None,
    ) -> int:
        """Return how many entries match; same filters as `list_entries`."""
        return self._store.count_entries(
            self.make_filter(action, target, operator, since)
        )

    def page(
        self, entry_filter: AuditFilter, limit: int, offset: int
    ) -> tuple[list[AuditEntry], int]:
        """Return a page of entries and the number that match, for the window."""
        entries = self._store.list_entries(entry_filter, limit, offset)
        return entries, self._store.count_entries(entry_filter)

    def last_id(self) -> int:
        """Return the id of the newest entry; it grows with every action recorded."""
        return self._store.last_id()

    @staticmethod
    def make_filter(
        action: AuditAction | str | None = None,
        target: str | None = None,
        operator: str | None = None,
        since: dt.datetime | float | None = None,
    ) -> AuditFilter:
        """Check the filters and build an `AuditFilter`; blank text matches anything."""
        action_value = None
        if action is not None:
            try:
                action_value = AuditAction(action).value
            except ValueError:
                names = ", ".join(a.value for a in AuditAction)
                raise InvalidArgumentError(
                    f"invalid action {action!r}: use one of {names}"
                ) from None
        return AuditFilter(
            action=action_value,
            target=_text_filter(target, "target"),
            operator=_text_filter(operator, "operator"),
            since=_since(since),
        )


def _text_filter(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"invalid {name} {value!r}: pass a string")
    return value.strip() or None


def _since(value: dt.datetime | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        # A naive datetime is local time, as in the rest of Python.
        return value.timestamp()
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        return float(value)
    raise InvalidArgumentError(
        f"invalid since {value!r}: pass a datetime or POSIX seconds"
    )
