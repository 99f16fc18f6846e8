"""The changelist's actions: purge the expired entries of every store,
export the selected ones as JSON Lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from ..exceptions import UnreadableValue
from ..facade import keyval_cache
from ..models import Entry
from ..transfer import entry_line

# Rows deleted per statement by the purge action, and statements per click.
PURGE_BATCH = 1000
PURGE_MAX_BATCHES = 100


@admin.action(description="Purge expired entries (of every store)", permissions=["delete"])
def purge_expired(
    model_admin: admin.ModelAdmin[Entry], request: HttpRequest, queryset: QuerySet[Entry]
) -> None:
    """Delete expired entries of every store, whatever is selected, in
    batches of PURGE_BATCH rows so that no statement locks much at once."""
    backend = keyval_cache()
    purged = 0
    for _ in range(PURGE_MAX_BATCHES):
        batch = backend.purge_expired(PURGE_BATCH)
        purged += batch
        if batch < PURGE_BATCH:
            break
    else:
        model_admin.message_user(
            request,
            "More expired entries remain: run the action again.",
            messages.WARNING,
        )
    noun = "entry" if purged == 1 else "entries"
    if purged:
        LogEntry.objects.create(
            user_id=cast(int, request.user.pk),
            content_type=ContentType.objects.get_for_model(Entry),
            object_repr=f"{purged} expired {noun}",
            action_flag=DELETION,
            change_message=f"Purged {purged} expired {noun}.",
        )
    model_admin.message_user(request, f"Purged {purged} expired {noun}.", messages.SUCCESS)


@admin.action(description="Export selected entries as JSON Lines", permissions=["view"])
def export_json_lines(
    model_admin: admin.ModelAdmin[Entry], request: HttpRequest, queryset: QuerySet[Entry]
) -> StreamingHttpResponse:
    """The selected entries in the format of ``keyval dump``, streamed.
    Entries that do not verify cannot be dumped and are left out."""
    rows = queryset.order_by("pk").values_list(
        "store", "key", "format", "value", "number", "expires"
    )

    def lines() -> Iterator[str]:
        for store, key, fmt, value, number, expires in rows.iterator(chunk_size=500):
            try:
                yield entry_line(bytes(store), bytes(key), fmt, bytes(value), number, expires)
            except UnreadableValue:
                continue
            yield "\n"

    response = StreamingHttpResponse(lines(), content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="keyval-entries.jsonl"'
    return response
