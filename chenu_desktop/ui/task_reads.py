"""The storage reads behind the task table, run in pool threads (no Qt here)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..errors import TaskNotFoundError
from ..models import TaskFilter, TaskRecord
from ..services import MAX_PAGE

if TYPE_CHECKING:
    from ..services import TaskService


def filter_arguments(task_filter: TaskFilter) -> dict[str, Any]:
    """Return the keyword arguments of `TaskService.list_tasks` for a filter."""
    return dataclasses.asdict(task_filter)


@dataclasses.dataclass
class FirstPage:
    """The count of a filter and its first page."""

    count: int
    records: list[TaskRecord]


@dataclasses.dataclass
class Refresh:
    """Changed records, and when new tasks may have come, the count and top rows.

    ``records`` maps each id to its record, or to None once it is deleted.
    ``newest`` is one row longer than the count grew, so its last row shows
    where the old top row is now; None unless the view is newest first and
    the count grew by at most a page.
    """

    records: dict[str, TaskRecord | None]
    count: int | None
    newest: list[TaskRecord] | None


@dataclasses.dataclass
class Resync:
    """A fresh count and fresh pages, by page number."""

    count: int
    pages: dict[int, list[TaskRecord]]


@dataclasses.dataclass
class Location:
    """A task's row in a filter, with the page that contains it."""

    position: int
    page_number: int
    page: list[TaskRecord]


class TaskListReader:
    """The reader of a filter's counts and pages, through the task service.

    Every method blocks on storage: call them through the `BackgroundRunner`.
    """

    def __init__(self, task_service: TaskService, page_size: int) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(
                f"invalid page size {page_size}: pass 1 to {MAX_PAGE} rows"
            )
        self._service = task_service
        self.page_size = page_size

    def count(self, task_filter: TaskFilter) -> int:
        return self._service.count_tasks(**filter_arguments(task_filter))

    def page(
        self, task_filter: TaskFilter, ascending: bool, page_number: int
    ) -> list[TaskRecord]:
        """Return the records of one page (rows from page_number * page_size)."""
        return self._service.list_tasks(
            **filter_arguments(task_filter),
            limit=self.page_size,
            offset=page_number * self.page_size,
            ascending=ascending,
        )

    def first_page(self, task_filter: TaskFilter, ascending: bool) -> FirstPage:
        count = self.count(task_filter)
        if count == 0:
            return FirstPage(0, [])
        return FirstPage(count, self.page(task_filter, ascending, 0))

    def refresh(
        self,
        task_filter: TaskFilter,
        ascending: bool,
        task_ids: list[str],
        old_count: int | None,
    ) -> Refresh:
        """Read the records of `task_ids`; with `old_count`, the count and top rows."""
        records: dict[str, TaskRecord | None] = {}
        for task_id in task_ids:
            try:
                records[task_id] = self._service.get_status(task_id)
            except TaskNotFoundError:
                records[task_id] = None
        if old_count is None:
            return Refresh(records, None, None)
        count = self.count(task_filter)
        added = count - old_count
        newest = None
        if not ascending and 0 < added <= self.page_size:
            newest = self._service.list_tasks(
                **filter_arguments(task_filter), limit=added + 1
            )
        return Refresh(records, count, newest)

    def resync(
        self, task_filter: TaskFilter, ascending: bool, page_numbers: list[int]
    ) -> Resync:
        """Read the count and the pages that still lie within it."""
        count = self.count(task_filter)
        pages = {
            number: self.page(task_filter, ascending, number)
            for number in page_numbers
            if number * self.page_size < count
        }
        return Resync(count, pages)

    def locate(
        self, task_filter: TaskFilter, ascending: bool, task_id: str
    ) -> Location | None:
        """Return the task's row in the filter with its page.

        Returns None when the task does not match the filter.

        Raises:
            TaskNotFoundError: No task has this id.
        """
        record = self._service.get_status(task_id)
        created = record.created_at
        after, before = task_filter.created_after, task_filter.created_before
        if (after is not None and created < after) or (
            before is not None and created > before
        ):
            return None
        if ascending:
            up_to_task = dataclasses.replace(task_filter, created_before=created)
        else:
            up_to_task = dataclasses.replace(task_filter, created_after=created)
        same_time = dataclasses.replace(
            task_filter, created_after=created, created_before=created
        )
        # NOTE: only the first MAX_PAGE tasks created at the very same time are
        # read, so a task behind more ties than that is reported as not matching.
        ties = self._service.list_tasks(
            **filter_arguments(same_time), limit=MAX_PAGE, ascending=ascending
        )
        tie_ids = [tie.task_id for tie in ties]
        if task_id not in tie_ids:
            return None
        position = self.count(up_to_task) - len(ties) + tie_ids.index(task_id)
        page_number = position // self.page_size
        return Location(
            position, page_number, self.page(task_filter, ascending, page_number)
        )
