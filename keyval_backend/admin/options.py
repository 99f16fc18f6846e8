"""``EntryAdmin``: the entries of every store, listed through the ORM,
written through ``caches["keyval"]``, values shown only once verified."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import BinaryField, Case, F, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..identity import decode_name, printable
from ..models import Entry
from . import views
from .actions import export_json_lines, purge_expired
from .changelist import CappedPaginator, EntryChangeList
from .filters import ExpiredFilter, ExpiryFilter, StoreFilter
from .forms import EntryForm
from .keys import WrittenKey, key_layout
from .store import backend_for, entries, hashes
from .values import (
    PREVIEW_CHARS,
    PREVIEW_MAX_BYTES,
    READ_ONLY_CHARS,
    epoch_text,
    expiry_text,
    relative_time,
    stored_size,
    truncate,
    value_of,
)


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Entries of every store: listed through the ORM, written through
    ``caches["keyval"]``, values shown only once verified."""

    form = EntryForm
    list_display = (
        "store_display",
        "key_display",
        "version_display",
        "prefix_display",
        "value_preview",
        "type_display",
        "size_display",
        "expires_display",
        "created_display",
        "updated_display",
    )
    list_display_links = ("key_display",)
    list_filter = (StoreFilter, ExpiryFilter, ExpiredFilter)
    # Only switches the search box on: get_search_results does the search.
    search_fields = ("key",)
    search_help_text = (
        "Part of the key as the application wrote it (user), or of the key as "
        "stored, with its prefix and version (:1:user); matched exactly: % and _ "
        "are ordinary characters, and case counts."
    )
    ordering = ("store", "key")
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    actions = (purge_expired, export_json_lines)

    # -- reading --------------------------------------------------------------

    entries = staticmethod(entries)
    shown = staticmethod(value_of)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Entry]:
        # The value is loaded only where it is small enough to preview.
        return (
            entries()
            .defer("value")
            .annotate(stored_size=stored_size())
            .annotate(
                preview=Case(
                    When(Q(stored_size__lte=PREVIEW_MAX_BYTES), then=F("value")),
                    default=Value(None),
                    output_field=BinaryField(),
                ),
            )
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EntryChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Entry], search_term: str
    ) -> tuple[QuerySet[Entry], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(key_layout().search(term)), False

    @admin.display(description="store", ordering="store")
    def store_display(self, entry: Entry) -> str:
        return printable(entry.store_name)

    @staticmethod
    def written(entry: Entry) -> WrittenKey:
        """The key of ``entry`` as the application wrote it, taken apart once
        per object."""
        cached: WrittenKey | None = getattr(entry, "_keyval_written", None)
        if cached is None:
            cached = key_layout().written(entry.key_name)
            entry._keyval_written = cached  # type: ignore[attr-defined]
        return cached

    @admin.display(description="key", ordering="key")
    def key_display(self, entry: Entry) -> SafeString:
        return format_html(
            '<span title="stored as {}">{}</span>',
            printable(entry.key_name),
            printable(self.written(entry).key),
        )

    @admin.display(description="version")
    def version_display(self, entry: Entry) -> int | None:
        return self.written(entry).version

    @admin.display(description="prefix")
    def prefix_display(self, entry: Entry) -> str | None:
        prefix = self.written(entry).prefix
        return None if prefix is None else printable(prefix)

    @admin.display(description="stored as")
    def stored_key_display(self, entry: Entry) -> str:
        return printable(entry.key_name)

    @admin.display(description="value")
    def value_preview(self, entry: Entry) -> SafeString:
        shown = value_of(entry)
        if not shown.readable:
            return format_html(
                '<span class="keyval-unreadable" title="{}">{}</span>',
                shown.problem,
                shown.text(PREVIEW_CHARS),
            )
        return format_html("<code>{}</code>", shown.text(PREVIEW_CHARS))

    @admin.display(description="type")
    def type_display(self, entry: Entry) -> SafeString:
        shown = value_of(entry)
        return format_html(
            '<span title="format {}">{}</span>', entry.format, shown.type_name or "?"
        )

    @admin.display(description="size (bytes)", ordering="stored_size")
    def size_display(self, entry: Entry) -> int:
        return value_of(entry).size

    @admin.display(description="expires", ordering="expires")
    def expires_display(self, entry: Entry) -> SafeString | str:
        if entry.expires is None:
            return "never"
        now = time.time()
        if entry.expires <= now:
            return format_html(
                '<span class="keyval-expired">expired {}</span>',
                relative_time(entry.expires - now),
            )
        return relative_time(entry.expires - now)

    @admin.display(description="created", ordering="created")
    def created_display(self, entry: Entry) -> str:
        return epoch_text(entry.created)

    @admin.display(description="updated", ordering="updated")
    def updated_display(self, entry: Entry) -> str:
        return epoch_text(entry.updated)

    @admin.display(description="expires")
    def expiry_details(self, entry: Entry) -> str:
        if entry.expires is None:
            return "never"
        return expiry_text(entry.expires, time.time())

    @admin.display(description="value")
    def value_display(self, entry: Entry) -> SafeString:
        shown = value_of(entry, full=True)
        if not shown.readable:
            return format_html(
                "<p><strong>unverified ({} bytes)</strong>: {}</p><p>It was not loaded. "
                "Only the application can say where it came from; delete it if it "
                "should not be there.</p>",
                shown.size,
                shown.problem,
            )
        if shown.json is not None:
            return format_html("<pre>{}</pre>", shown.pretty_json())
        return format_html(
            "<pre>{}</pre><p>A {} is not a JSON value, so it is read-only here: "
            "change it through the cache API.</p>",
            truncate(repr(shown.value), READ_ONLY_CHARS),
            shown.type_name,
        )

    # -- the form -------------------------------------------------------------

    DETAILS = (
        "stored_key_display",
        "version_display",
        "prefix_display",
        "type_display",
        "format",
        "size_display",
        "created_display",
        "updated_display",
        "writes",
    )

    def get_fieldsets(self, request: HttpRequest, obj: Entry | None = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": ("store_name", "key_name", "value_json")}),
                ("Expiry", {"fields": ("expiry", "expires_in")}),
            ]
        details = ("Details", {"fields": self.DETAILS})
        if not self.has_change_permission(request, obj):
            return [
                (None, {"fields": ("store_display", "key_display", "value_display")}),
                ("Expiry", {"fields": ("expiry_details",)}),
                details,
            ]
        editable = value_of(obj, full=True).json is not None
        value = "value_json" if editable else "value_display"
        return [
            (None, {"fields": ("store_display", "key_display", value)}),
            ("Expiry", {"fields": ("expiry_details", "expiry", "expires_in")}),
            details,
        ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Entry | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("store_display", "key_display", "value_display", "expiry_details", *self.DETAILS)

    # -- writing ----------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Entry, form: Any, change: bool) -> None:
        """Write through the backend, then point ``obj`` at the row written,
        for the admin's redirect and log entry.

        The value is written when it was edited, or to bring an expired entry
        back; a change of expiry alone only touches the entry, so that it
        cannot overwrite a value written by the application meanwhile.
        """
        backend = backend_for(form.store)
        editable = "value_json" in form.fields
        if editable and (not change or "value_json" in form.changed_data or form.expired):
            backend.set(form.key, form.cleaned_data["value_json"], form.timeout)
        elif form.has_changed() and not backend.touch(form.key, form.timeout):
            self.message_user(
                request, "The entry expired or was deleted meanwhile.", messages.WARNING
            )
        written = entries().filter(**hashes(form.store, form.key))
        pk = written.values_list("pk", flat=True).first()
        if pk is not None:  # else deleted meanwhile: the admin just goes on
            obj.pk = pk
            obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """An entry has no relations; and its form saved no instance."""

    def delete_model(self, request: HttpRequest, obj: Entry) -> None:
        backend_for(obj.store_name).delete_many([obj.key_name])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Entry]) -> None:
        keys: dict[bytes, list[str]] = defaultdict(list)
        for store, key in queryset.order_by().values_list("store", "key").iterator():
            keys[bytes(store)].append(decode_name(key))
        for store, store_keys in keys.items():
            backend_for(decode_name(store)).delete_many(store_keys)

    # -- the store summary -------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        summary = path(
            "summary/",
            self.admin_site.admin_view(self.summary_view),
            name="keyval_backend_entry_summary",
        )
        return [summary, *super().get_urls()]

    def summary_view(self, request: HttpRequest) -> HttpResponse:
        return views.summary(self, request)
