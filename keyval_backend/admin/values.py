"""What the admin shows of a stored value: verified first, decoded only
then, previewed within bounds; and how it prints times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Case, Expression, Value, When
from django.db.models.functions import Length
from django.utils import formats
from django.utils.timezone import localtime

from ..codec import INT_FORMAT, KIND_FORMATS, RowCodec
from ..exceptions import UnreadableValue
from ..facade import CACHE_ALIAS
from ..models import Entry
from ..serializers import load_serializer
from ..transfer import is_exact, to_json

# Values up to this size are loaded, verified and previewed on the changelist;
# larger ones are only measured, so that a page of big values stays cheap.
PREVIEW_MAX_BYTES = 64 * 1024
# Characters of a value shown in a changelist cell, and on a read-only form.
PREVIEW_CHARS = 80
READ_ONLY_CHARS = 4000
# Native integers live in a BIGINT column.
INT_SIZE = 8


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
    # "a hash", "a set", "a sorted set", "a lock": not a value at all.
    kind: str = ""

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
        if self.kind:
            return f"{self.kind} (read it with the cache's commands)"
        if not self.loaded:
            return f"{self.size} bytes (too large to preview)"
        if not self.readable:
            return f"unverified ({self.size} bytes)"
        return truncate(self.json if self.json is not None else repr(self.value), limit)


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
    if entry.format in KIND_FORMATS:
        return ShownValue(size=size, kind=KIND_FORMATS[entry.format])
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


def truncate(text: str, limit: int) -> str:
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


def epoch_text(seconds: float) -> str:
    """An epoch as the admin prints a datetime, in the current time zone:
    a string, since read-only form fields print datetimes raw."""
    return str(formats.localize(localtime(datetime.fromtimestamp(seconds, tz=UTC))))


def expiry_text(expires: float, now: float) -> str:
    verb = "expired" if expires <= now else "expires"
    return f"{verb} {relative_time(expires - now)} ({epoch_text(expires)})"


def value_of(entry: Entry, full: bool = False) -> ShownValue:
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
