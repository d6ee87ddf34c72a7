"""The storage reads behind the task table, run in pool threads (no Qt here)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..errors import TaskNotFoundError
from ..models import TaskFilter, TaskRecord, TaskSort
from ..services import MAX_PAGE

if TYPE_CHECKING:
    from ..services import TaskService


#: Rows a locate reads at most in an order other than creation time.
MAX_LOCATE_SCAN = 20 * MAX_PAGE
#: Keys a change of a task can alter; the others are fixed at submit.
CHANGING_SORTS = frozenset(
    {TaskSort.STARTED, TaskSort.DURATION, TaskSort.ATTEMPTS, TaskSort.STATUS}
)


def filter_arguments(task_filter: TaskFilter) -> dict[str, Any]:
    """Return the keyword arguments of `TaskService.list_tasks` for a filter."""
    return dataclasses.asdict(task_filter)


@dataclasses.dataclass(frozen=True)
class ListOrder:
    """The order of the task list: a sort key and its direction."""

    key: TaskSort = TaskSort.CREATED
    ascending: bool = False


def sort_value(record: TaskRecord, key: TaskSort) -> Any:
    """Return the value of `key` the ledger orders `record` by (see `TaskSort`)."""
    if key is TaskSort.DURATION:
        if record.started_at is None or record.finished_at is None:
            return None
        return record.finished_at - record.started_at
    values = {
        TaskSort.CREATED: record.created_at,
        TaskSort.STARTED: record.started_at,
        TaskSort.ATTEMPTS: record.attempts,
        TaskSort.PRIORITY: record.priority,
        TaskSort.TASK_NAME: record.task_name,
        TaskSort.QUEUE: record.queue.value,
        TaskSort.STATUS: record.status.value,
    }
    return values[key]


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
        self, task_filter: TaskFilter, order: ListOrder, page_number: int
    ) -> list[TaskRecord]:
        """Return the records of one page (rows from page_number * page_size)."""
        return self._list(task_filter, order, page_number * self.page_size)

    def _list(
        self,
        task_filter: TaskFilter,
        order: ListOrder,
        offset: int,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        return self._service.list_tasks(
            **filter_arguments(task_filter),
            limit=self.page_size if limit is None else limit,
            offset=offset,
            ascending=order.ascending,
            sort=order.key,
        )

    def first_page(self, task_filter: TaskFilter, order: ListOrder) -> FirstPage:
        count = self.count(task_filter)
        if count == 0:
            return FirstPage(0, [])
        return FirstPage(count, self.page(task_filter, order, 0))

    def refresh(
        self,
        task_filter: TaskFilter,
        order: ListOrder,
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
        newest_first = order == ListOrder()
        if newest_first and 0 < added <= self.page_size:
            newest = self._service.list_tasks(
                **filter_arguments(task_filter), limit=added + 1
            )
        return Refresh(records, count, newest)

    def resync(
        self, task_filter: TaskFilter, order: ListOrder, page_numbers: list[int]
    ) -> Resync:
        """Read the count and the pages that still lie within it."""
        count = self.count(task_filter)
        pages = {
            number: self.page(task_filter, order, number)
            for number in page_numbers
            if number * self.page_size < count
        }
        return Resync(count, pages)

    def locate(
        self, task_filter: TaskFilter, order: ListOrder, task_id: str
    ) -> Location | None:
        """Return the task's row in the filter with its page.

        Returns None when the task does not match the filter.

        Raises:
            TaskNotFoundError: No task has this id.
        """
        record = self._service.get_status(task_id)
        if order.key is not TaskSort.CREATED:
            return self._locate_by_reading(task_filter, order, task_id)
        ascending = order.ascending
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
        ties = self._list(same_time, order, 0, MAX_PAGE)
        tie_ids = [tie.task_id for tie in ties]
        if task_id not in tie_ids:
            return None
        position = self.count(up_to_task) - len(ties) + tie_ids.index(task_id)
        page_number = position // self.page_size
        return Location(
            position, page_number, self.page(task_filter, order, page_number)
        )

    def _locate_by_reading(
        self, task_filter: TaskFilter, order: ListOrder, task_id: str
    ) -> Location | None:
        """Find the task's row by reading the list from the top.

        NOTE: only the first `MAX_LOCATE_SCAN` rows are read, so a task
        further down in this order is reported as not matching.
        """
        for offset in range(0, MAX_LOCATE_SCAN, MAX_PAGE):
            records = self._list(task_filter, order, offset, MAX_PAGE)
            ids = [record.task_id for record in records]
            if task_id in ids:
                position = offset + ids.index(task_id)
                page_number = position // self.page_size
                page = self.page(task_filter, order, page_number)
                return Location(position, page_number, page)
            if len(records) < MAX_PAGE:
                break
        return None
