"""The Django admin for the entries of every store: browse, search, edit.

Reads go through the ORM, so that the admin's changelist machinery (filters,
ordering, pagination) works as usual; every write goes through
:class:`~keyval_backend.cache.KeyValCache`, so that an edit is serialized,
signed and stored exactly as a write of the API would be. Stored values are
shown only once their signature verifies: a row anyone could have written is
never unpickled here.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BinaryField,
    Case,
    Count,
    Expression,
    F,
    Lookup,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Length
from django.db.models.sql.compiler import SQLCompiler
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import formats
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import localtime

from .cache import KeyValCache
from .codec import INT_FORMAT, RowCodec
from .exceptions import UnreadableValue
from .facade import CACHE_ALIAS, keyval_cache
from .identity import decode_name, encode_name, name_hash, printable
from .models import Entry
from .serializers import load_serializer
from .transfer import entry_line, is_exact, strict_loads, to_json

# Values up to this size are loaded, verified and previewed on the changelist;
# larger ones are only measured, so that a page of big values stays cheap.
PREVIEW_MAX_BYTES = 64 * 1024
# Characters of a value shown in a changelist cell, and on a read-only form.
PREVIEW_CHARS = 80
READ_ONLY_CHARS = 4000
# Stores offered by the store filter; more are reachable through ?store=<hash>.
MAX_STORES = 100
# The changelist counts matching rows up to here and no further.
COUNT_LIMIT = 10_000
# Rows deleted per statement by the purge action, and statements per click.
PURGE_BATCH = 1000
PURGE_MAX_BATCHES = 100
# Native integers live in a BIGINT column.
INT_SIZE = 8


# -- reading values -----------------------------------------------------------------


@lru_cache(maxsize=8)
def _codec_for(serializer: str) -> RowCodec:
    return RowCodec(load_serializer(serializer))


def _codec() -> RowCodec:
    """The codec of ``caches["keyval"]``: it reads exactly the formats that
    cache reads, so a store configured not to unpickle is not unpickled here
    either."""
    config: dict[str, Any] = settings.CACHES.get(CACHE_ALIAS, {})
    options: dict[str, Any] = config.get("OPTIONS") or {}
    return _codec_for(options.get("SERIALIZER", "pickle"))


@dataclass(frozen=True)
class ShownValue:
    """What the admin may show of one stored value."""

    size: int
    loaded: bool = True
    readable: bool = False
    value: Any = None
    problem: str = ""

    @cached_property
    def json(self) -> str | None:
        """Compact JSON of the value when JSON reads back the very same value;
        only such values are editable."""
        if not self.readable or not is_exact(self.value):
            return None
        return to_json(self.value)

    @property
    def type_name(self) -> str:
        return type(self.value).__name__ if self.readable else ""

    def pretty_json(self) -> str:
        """The value as indented JSON (only for values with :attr:`json`);
        characters are escaped only if the text holds a lone surrogate."""
        text = json.dumps(self.value, indent=2, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(self.value, indent=2)
        return text

    def text(self, limit: int) -> str:
        """A one-line description of at most about ``limit`` characters."""
        if not self.loaded:
            return f"{self.size} bytes (too large to preview)"
        if not self.readable:
            return f"unverified ({self.size} bytes)"
        return _truncate(self.json if self.json is not None else repr(self.value), limit)


def stored_size() -> Expression:
    """SQL for the bytes a row's value takes: its value column, or the
    BIGINT of a native integer."""
    return Case(
        When(format=INT_FORMAT, then=Value(INT_SIZE)),
        default=Length("value"),
    )


def show_value(entry: Entry, data: bytes | memoryview | None) -> ShownValue:
    """Verify and decode ``data``, the value of ``entry`` (None when it was
    too large to load), without ever deserializing what does not verify."""
    size = entry.stored_size if hasattr(entry, "stored_size") else _size(entry, data)
    if data is None and entry.format != INT_FORMAT:
        return ShownValue(size=size, loaded=False)
    identity = (entry.store_hash + entry.key_hash).encode()
    try:
        value = _codec().decode(identity, entry.format, bytes(data or b""), entry.number)
    except UnreadableValue as exc:
        return ShownValue(size=size, problem=str(exc))
    return ShownValue(size=size, readable=True, value=value)


def _size(entry: Entry, data: bytes | memoryview | None) -> int:
    return INT_SIZE if entry.format == INT_FORMAT else len(data or b"")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def relative_time(seconds: float) -> str:
    """``in 3 min`` for a time ahead, ``3 min ago`` for one past."""
    span = abs(seconds)
    for unit, length in (("day", 86400), ("h", 3600), ("min", 60)):
        if span >= length:
            count = int(span // length)
            text = f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
            break
    else:
        text = f"{int(span)} s"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _epoch(seconds: float) -> str:
    """An epoch as the admin prints a datetime, in the current time zone:
    a string, since read-only form fields print datetimes raw."""
    return str(formats.localize(localtime(datetime.fromtimestamp(seconds, tz=UTC))))


# -- searching bytes ----------------------------------------------------------------

if TYPE_CHECKING:  # Lookup is generic for type checkers only.
    _BoolLookup = Lookup[bool]
else:
    _BoolLookup = Lookup


class BytesContains(_BoolLookup):
    """``lhs`` (a binary column) contains the bytes ``rhs``, compared byte
    for byte: no LIKE, so ``%`` and ``_`` are plain characters, and no
    collation, so case and accents count."""

    lookup_name = "keyval_bytes_contains"

    def _operands(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any], str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return lhs, list(lhs_params), rhs, list(rhs_params)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        raise NotSupportedError(f"no byte substring search on {connection.vendor}")

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params, rhs, rhs_params = self._operands(compiler, connection)
        return f"instr({lhs}, {rhs}) > 0", [*lhs_params, *rhs_params]

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params, rhs, rhs_params = self._operands(compiler, connection)
        return f"position({rhs} in {lhs}) > 0", [*rhs_params, *lhs_params]

    def as_mysql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params, rhs, rhs_params = self._operands(compiler, connection)
        return f"LOCATE({rhs}, {lhs}) > 0", [*rhs_params, *lhs_params]


def key_contains(text: str) -> BytesContains:
    """The condition "the stored key contains ``text``"."""
    return BytesContains(F("key"), Value(encode_name(text), output_field=BinaryField()))


# -- the changelist -------------------------------------------------------------------


def _live(now: float) -> Q:
    return Q(expires__isnull=True) | Q(expires__gt=now)


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
        return queryset.filter(_live(now))

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


# -- the form -------------------------------------------------------------------------


class JSONValueField(forms.CharField):
    """A value typed as JSON text, cleaned to the Python value.

    A change is a change of value, not of text: re-indenting the JSON does not
    rewrite the entry, while ``1`` to ``true`` does (their JSON differs).
    """

    widget = forms.Textarea(attrs={"rows": 10, "cols": 80, "spellcheck": "false"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        try:
            return strict_loads(text)
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            where = (
                f" (line {exc.lineno}, column {exc.colno})"
                if isinstance(exc, json.JSONDecodeError)
                else ""
            )
            raise forms.ValidationError(
                "Enter valid JSON: %(detail)s%(where)s.",
                code="invalid_json",
                params={"detail": detail, "where": where},
            ) from None

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(to_json(strict_loads(initial or "")) != to_json(strict_loads(data or "")))
        except ValueError:
            return True


class EntryForm(forms.ModelForm):  # type: ignore[type-arg]
    """Add or change an entry through form fields that are not model fields:
    the names as text, the value as JSON, the expiry as a choice. The model
    fields themselves are never saved from here (see EntryAdmin.save_model)."""

    store_name = forms.CharField(
        label="Store",
        strip=False,
        initial="default",
        help_text="The store's name: a cache's LOCATION, or the name given to KeyVal().",
    )
    key_name = forms.CharField(
        label="Key",
        strip=False,
        initial=":1:",
        help_text=(
            "The key as stored, made by the cache's key function: with the default "
            'one, <code>:1:</code> and then the key, as cache.set("user", …) and '
            'KeyVal(…).set("user", …) store <code>:1:user</code>.'
        ),
    )
    # The value as the form showed it comes back with the post, so that a value
    # the application wrote meanwhile is not taken for the user's edit.
    value_json = JSONValueField(
        label="Value (JSON)",
        help_text='A JSON value: 42, "text", [1, 2], {"a": null}…',
        show_hidden_initial=True,
    )
    expiry = forms.ChoiceField(label="Expiry", widget=forms.RadioSelect)
    expires_in = forms.IntegerField(
        label="Expires in (seconds)",
        required=False,
        min_value=1,
        max_value=100 * 365 * 86400,
        help_text="Counted from the save.",
        widget=forms.NumberInput(attrs={"size": 10}),
    )

    KEEP, NEVER, IN = "keep", "never", "in"

    # Set by clean(), for EntryAdmin.save_model: where to write, and how.
    store: str
    key: str
    timeout: float | None
    expired: bool

    class Meta:
        model = Entry
        fields: ClassVar[list[str]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        entry = self.instance
        self.adding = entry.pk is None
        choices = [(self.NEVER, "Never expires"), (self.IN, "Expires in:")]
        if self.adding:
            self.fields["expiry"].initial = self.NEVER
        else:
            del self.fields["store_name"], self.fields["key_name"]
            shown = EntryAdmin.shown(entry, full=True)
            if shown.json is None:
                del self.fields["value_json"]
            else:
                text = shown.pretty_json()
                self.fields["value_json"].initial = text
                # As tall as the value, within reason.
                self.fields["value_json"].widget.attrs["rows"] = min(text.count("\n") + 3, 30)
            if entry.expires is not None:
                keep = f"Keep: {_expiry_text(entry.expires, time.time())}"
                choices.insert(0, (self.KEEP, keep))
                self.fields["expiry"].initial = self.KEEP
            else:
                self.fields["expiry"].initial = self.NEVER
        self.fields["expiry"].choices = choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        now = time.time()
        entry = self.instance
        if self.adding and "store_name" in cleaned and "key_name" in cleaned:
            self.store = cleaned["store_name"]
            self.key = cleaned["key_name"]
            taken = (
                EntryAdmin.entries().filter(_live(now), **_hashes(self.store, self.key)).exists()
            )
            if taken:
                raise forms.ValidationError(
                    "This store already has an entry with this key: change that one.",
                    code="exists",
                )
        elif not self.adding:
            self.store, self.key = entry.store_name, entry.key_name
        expiry = cleaned.get("expiry")
        timeout: float | None = None
        if expiry == self.IN:
            timeout = cleaned.get("expires_in")
            if timeout is None:
                self.add_error("expires_in", "Give the number of seconds.")
        elif expiry == self.KEEP:
            timeout = (entry.expires or 0) - now
            if timeout <= 0:
                self.add_error("expiry", "This entry has expired: choose a new expiry.")
        self.expired = entry.expires is not None and entry.expires <= now
        if "value_json" not in self.fields and self.expired and self.has_changed():
            raise forms.ValidationError(
                "This entry has expired and its value cannot be edited here: "
                "it can only be deleted.",
                code="expired",
            )
        self.timeout = timeout
        return cleaned

    @cached_property
    def changed_data(self) -> list[str]:
        # Seconds typed next to another expiry choice are no change.
        changed: list[str] = super().changed_data
        if self.data.get(self.add_prefix("expiry")) != self.IN:
            changed = [name for name in changed if name != "expires_in"]
        return changed


def _hashes(store: str, key: str) -> dict[str, str]:
    return {
        "store_hash": name_hash(encode_name(store)),
        "key_hash": name_hash(encode_name(key)),
    }


def _expiry_text(expires: float, now: float) -> str:
    verb = "expired" if expires <= now else "expires"
    return f"{verb} {relative_time(expires - now)} ({_epoch(expires)})"


def _stored_key(key: Any, key_prefix: str, version: Any) -> str:
    """A key function that leaves keys as they are: the admin shows and
    writes keys as stored, already made by the application's key function."""
    return str(key)


def backend_for(store: str) -> KeyValCache:
    """``caches["keyval"]`` bound to ``store``, writing keys exactly as given
    (a copy: the cache itself is untouched)."""
    backend = keyval_cache().facade_view(store)
    backend.key_func = _stored_key
    return backend


# -- the admin ---------------------------------------------------------------------------


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Entries of every store: listed through the ORM, written through
    ``caches["keyval"]``, values shown only once verified."""

    form = EntryForm
    list_display = (
        "store_display",
        "key_display",
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
        "Part of the key as stored (e.g. :1:user), matched exactly: % and _ are "
        "ordinary characters, and case counts."
    )
    ordering = ("store", "key")
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    actions = ("purge_expired", "export_json_lines")

    # -- reading --------------------------------------------------------------

    @staticmethod
    def entries() -> QuerySet[Entry]:
        """Entries of the database ``caches["keyval"]`` writes to, so that
        what the admin shows is what its writes change."""
        return Entry.objects.using(keyval_cache().database)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Entry]:
        # The value is loaded only where it is small enough to preview.
        return (
            self.entries()
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
        return queryset.filter(key_contains(term)), False

    @staticmethod
    def shown(entry: Entry, full: bool = False) -> ShownValue:
        """The value of ``entry``, decoded once per object; ``full`` loads it
        even when it is too large for the changelist."""
        cached: ShownValue | None = getattr(entry, "_keyval_shown", None)
        if cached is None or (full and not cached.loaded):
            # The preview holds the whole value when it is small enough.
            data = entry.__dict__.get("preview")
            if data is None and (full or "preview" not in entry.__dict__):
                data = entry.value
            cached = show_value(entry, data)
            entry._keyval_shown = cached  # type: ignore[attr-defined]
        return cached

    @admin.display(description="store", ordering="store")
    def store_display(self, entry: Entry) -> str:
        return printable(entry.store_name)

    @admin.display(description="key", ordering="key")
    def key_display(self, entry: Entry) -> str:
        return printable(entry.key_name)

    @admin.display(description="value")
    def value_preview(self, entry: Entry) -> SafeString:
        shown = self.shown(entry)
        if not shown.readable:
            return format_html(
                '<span class="keyval-unreadable" title="{}">{}</span>',
                shown.problem,
                shown.text(PREVIEW_CHARS),
            )
        return format_html("<code>{}</code>", shown.text(PREVIEW_CHARS))

    @admin.display(description="type")
    def type_display(self, entry: Entry) -> SafeString:
        shown = self.shown(entry)
        return format_html(
            '<span title="format {}">{}</span>', entry.format, shown.type_name or "?"
        )

    @admin.display(description="size (bytes)", ordering="stored_size")
    def size_display(self, entry: Entry) -> int:
        return self.shown(entry).size

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
        return _epoch(entry.created)

    @admin.display(description="updated", ordering="updated")
    def updated_display(self, entry: Entry) -> str:
        return _epoch(entry.updated)

    @admin.display(description="expires")
    def expiry_details(self, entry: Entry) -> str:
        if entry.expires is None:
            return "never"
        return _expiry_text(entry.expires, time.time())

    @admin.display(description="value")
    def value_display(self, entry: Entry) -> SafeString:
        shown = self.shown(entry, full=True)
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
            _truncate(repr(shown.value), READ_ONLY_CHARS),
            shown.type_name,
        )

    # -- the form -------------------------------------------------------------

    DETAILS = (
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
        editable = self.shown(obj, full=True).json is not None
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
        written = self.entries().filter(**_hashes(form.store, form.key))
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

    # -- actions -------------------------------------------------------------------

    @admin.action(description="Purge expired entries (of every store)", permissions=["delete"])
    def purge_expired(self, request: HttpRequest, queryset: QuerySet[Entry]) -> None:
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
            self.message_user(
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
        self.message_user(request, f"Purged {purged} expired {noun}.", messages.SUCCESS)

    @admin.action(description="Export selected entries as JSON Lines", permissions=["view"])
    def export_json_lines(
        self, request: HttpRequest, queryset: QuerySet[Entry]
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

    # -- the store summary -------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        summary = path(
            "summary/",
            self.admin_site.admin_view(self.summary_view),
            name="keyval_backend_entry_summary",
        )
        return [summary, *super().get_urls()]

    def summary_view(self, request: HttpRequest) -> HttpResponse:
        """Entries, bytes and expired entries of each store: one GROUP BY,
        a scan of the whole table, hence a page of its own rather than a
        part of every changelist view."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        now = time.time()
        rows = (
            self.entries()
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
            **self.admin_site.each_context(request),
            "title": "Store summary",
            "opts": self.opts,
            "stores": stores,
            "totals": {
                name: sum(store[name] for store in stores)
                for name in ("entries", "live", "expiring", "expired", "size")
            },
        }
        return TemplateResponse(request, "admin/keyval_backend/entry/summary.html", context)
