"""The changelist and its paginator, which never counts a whole table."""

from __future__ import annotations

from functools import cached_property

from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import Entry

# The changelist counts matching rows up to here and no further.
COUNT_LIMIT = 10_000


class CappedPaginator(Paginator):  # type: ignore[type-arg]
    """Counts at most COUNT_LIMIT + 1 matching rows, so that no page view
    counts a whole table; the pages past the limit are reached by narrowing
    the list (a store, a search) rather than by paging."""

    @cached_property
    def _counted(self) -> int:
        # Neither order nor columns: which rows are counted does not matter.
        rows: QuerySet[Entry] = self.object_list  # type: ignore[assignment]
        return rows.order_by().values("pk")[: COUNT_LIMIT + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, COUNT_LIMIT)

    @property
    def capped(self) -> bool:
        """Whether more rows match than :attr:`count` says."""
        return self._counted > COUNT_LIMIT


class EntryChangeList(ChangeList):
    """Django's changelist, aware of a capped count."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.capped = bool(self.paginator.capped)
