"""The rows behind the task table: loaded records, gaps and page bookkeeping."""

from __future__ import annotations

import collections
from collections.abc import Iterable

from ..models import TaskRecord, TaskStatus

#: Pages kept in memory; the least recently shown ones are dropped beyond this.
MAX_CACHED_PAGES = 50


class TaskRows:
    """A list of rows of which only some pages are loaded (no Qt here).

    Row numbers are positions in the filtered list. A row is None until its
    page has arrived. Each task id is in one row at most. `store` reports a
    page that repeats the id of another row, because that means the list
    moved between two reads.
    """

    def __init__(
        self, page_size: int, max_cached_pages: int = MAX_CACHED_PAGES
    ) -> None:
        self.page_size = page_size
        self.max_cached_pages = max_cached_pages
        self._records: list[TaskRecord | None] = []
        self._row_by_id: dict[str, int] = {}
        #: Pages that arrived, least recently shown first.
        self._page_use: collections.OrderedDict[int, None] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def record(self, row: int) -> TaskRecord | None:
        if 0 <= row < len(self._records):
            return self._records[row]
        return None

    def row_of(self, task_id: str) -> int | None:
        return self._row_by_id.get(task_id)

    def page_of(self, row: int) -> int:
        return row // self.page_size

    def page_rows(self, page_number: int) -> tuple[int, int]:
        """Return the first and last row of a page (last < first when it is empty)."""
        first = page_number * self.page_size
        last = min(first + self.page_size, len(self._records)) - 1
        return first, last

    def recent_pages(self, limit: int) -> list[int]:
        """Return up to `limit` loaded pages, the most recently shown last."""
        return list(self._page_use)[-limit:]

    def touch(self, page_number: int) -> None:
        """Mark a page as just shown, so it is the last to be dropped."""
        if page_number in self._page_use:
            self._page_use.move_to_end(page_number)

    # --- changing rows -------------------------------------------------------

    def reset(self, count: int = 0) -> None:
        """Make `count` rows, none of them loaded."""
        self._records = [None] * count
        self._row_by_id = {}
        self._page_use.clear()

    def extend(self, added: int) -> None:
        """Add `added` rows, not loaded, at the end."""
        self._records.extend([None] * added)

    def truncate(self, count: int) -> None:
        """Keep the first `count` rows."""
        for record in self._records[count:]:
            if record is not None:
                self._row_by_id.pop(record.task_id, None)
        del self._records[count:]

    def store(self, offset: int, records: Iterable[TaskRecord]) -> bool:
        """Put records into the rows from `offset`; return False if an id moved.

        A record whose id was in another row moves here, and that row
        becomes not loaded.
        """
        consistent = True
        for row, record in enumerate(records, start=offset):
            if row >= len(self._records):
                break
            old = self._records[row]
            if old is not None and self._row_by_id.get(old.task_id) == row:
                del self._row_by_id[old.task_id]
            other_row = self._row_by_id.get(record.task_id)
            if other_row is not None and other_row != row:
                consistent = False
                self._records[other_row] = None
            self._records[row] = record
            self._row_by_id[record.task_id] = row
        return consistent

    def store_page(self, page_number: int, records: list[TaskRecord]) -> bool:
        """Store the records of a page and mark it as just shown; see `store`."""
        consistent = self.store(page_number * self.page_size, records)
        self._page_use[page_number] = None
        self._page_use.move_to_end(page_number)
        return consistent

    def replace(self, records: Iterable[TaskRecord]) -> list[int]:
        """Replace loaded records by newer versions; return their rows, sorted."""
        rows = []
        for record in records:
            row = self._row_by_id.get(record.task_id)
            if row is not None:
                self._records[row] = record
                rows.append(row)
        return sorted(rows)

    def evict(self) -> list[tuple[int, int]]:
        """Drop the least recently shown pages beyond the cache size.

        Returns the (first, last) rows of each dropped page.
        """
        dropped = []
        while len(self._page_use) > self.max_cached_pages:
            page_number, _ = self._page_use.popitem(last=False)
            first, last = self.page_rows(page_number)
            for row in range(first, last + 1):
                record = self._records[row]
                if record is not None:
                    self._row_by_id.pop(record.task_id, None)
                    self._records[row] = None
            if first <= last:
                dropped.append((first, last))
        return dropped

    def insert_at_top(self, records: list[TaskRecord]) -> None:
        """Insert loaded rows before row 0; the other rows move down."""
        added = len(records)
        self._records[0:0] = records
        self._row_by_id = {
            record.task_id: row
            for row, record in enumerate(self._records)
            if record is not None
        }
        # A page that moved down by `added` rows now overlaps one or two pages.
        size = self.page_size
        shifted: collections.OrderedDict[int, None] = collections.OrderedDict()
        shifted[0] = None
        for page_number in self._page_use:
            shifted[(page_number * size + added) // size] = None
            shifted[((page_number + 1) * size - 1 + added) // size] = None
        self._page_use = shifted

    def replace_all(self, count: int, pages: dict[int, list[TaskRecord]]) -> None:
        """Make `count` rows of which only `pages` are loaded.

        While a view still counts more rows, call `pad` after this and
        `truncate` after telling the views.
        """
        records: list[TaskRecord | None] = [None] * count
        for page_number, page in pages.items():
            for row, record in enumerate(page, start=page_number * self.page_size):
                if row < count:
                    records[row] = record
        self._records = records
        self._row_by_id = {
            record.task_id: row
            for row, record in enumerate(records)
            if record is not None
        }
        self._page_use = collections.OrderedDict.fromkeys(pages)

    def pad(self, count: int) -> None:
        """Add rows, not loaded, until there are `count`."""
        if count > len(self._records):
            self.extend(count - len(self._records))

    def rows_in_status(self, status: TaskStatus) -> list[int]:
        """Return the loaded rows whose record is in `status`, sorted."""
        rows = []
        for row in self._row_by_id.values():
            record = self._records[row]
            if record is not None and record.status is status:
                rows.append(row)
        return sorted(rows)
