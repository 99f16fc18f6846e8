"""The admin's own page: a summary of every store."""

from __future__ import annotations

import time

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from ..identity import decode_name
from ..models import Entry
from .store import entries
from .values import stored_size


def summary(model_admin: admin.ModelAdmin[Entry], request: HttpRequest) -> HttpResponse:
    """Entries, bytes and expired entries of each store: one GROUP BY,
    a scan of the whole table, hence a page of its own rather than a
    part of every changelist view."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    now = time.time()
    rows = (
        entries()
        .order_by()
        .values("store", "store_hash")
        .annotate(
            entries=Count("pk"),
            size=Sum(stored_size()),
            expired=Count("pk", filter=Q(expires__lte=now)),
            expiring=Count("pk", filter=Q(expires__gt=now)),
        )
        .order_by("store")
    )
    stores = [
        {
            "name": decode_name(row["store"]),
            "hash": row["store_hash"],
            "entries": row["entries"],
            "live": row["entries"] - row["expired"],
            "expiring": row["expiring"],
            "expired": row["expired"],
            "size": row["size"] or 0,
        }
        for row in rows
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Store summary",
        "opts": model_admin.opts,
        "stores": stores,
        "totals": {
            name: sum(store[name] for store in stores)
            for name in ("entries", "live", "expiring", "expired", "size")
        },
    }
    return TemplateResponse(request, "admin/keyval_backend/entry/summary.html", context)
