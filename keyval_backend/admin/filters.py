"""The changelist's filters: one store, expiry, live or expired."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db.models import Min, QuerySet
from django.http import HttpRequest

from ..identity import decode_name, printable
from ..models import Entry
from .store import live

# Stores offered by the store filter; more are reachable through ?store=<hash>.
MAX_STORES = 100


class StoreFilter(admin.SimpleListFilter):
    """One store at a time, by the hash of its name: the unique index starts
    with it, and any name, even one no URL can carry, has one."""

    title = "store"
    parameter_name = "store"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One row a store, found through the smallest id of each store (the
        # unique index holds both), at most MAX_STORES of them.
        entries = model_admin.entries().order_by()
        firsts = entries.values("store_hash").annotate(first=Min("pk")).values("first")
        stores = (
            entries.filter(pk__in=firsts)
            .order_by("store")
            .values_list("store_hash", "store")[:MAX_STORES]
        )
        return [(store_hash, printable(decode_name(store))) for store_hash, store in stores]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Entry]) -> QuerySet[Entry]:
        if self.value() is None:
            return queryset
        return queryset.filter(store_hash=self.value())


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("expiring", "Has an expiry"), ("persistent", "Persistent")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Entry]) -> QuerySet[Entry]:
        if self.value() == "expiring":
            return queryset.filter(expires__isnull=False)
        if self.value() == "persistent":
            return queryset.filter(expires__isnull=True)
        return queryset


class ExpiredFilter(admin.SimpleListFilter):
    """Live entries unless asked otherwise: an expired entry reads as absent
    through the API, and shows here only to be inspected or purged."""

    title = "state"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Expired only"), ("all", "Live and expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Entry]) -> QuerySet[Entry]:
        now = time.time()
        if self.value() == "yes":
            return queryset.filter(expires__lte=now)
        if self.value() == "all":
            return queryset
        return queryset.filter(live(now))

    def choices(self, changelist: Any) -> Iterator[Any]:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Live only",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }
