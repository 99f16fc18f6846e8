"""Keys as the application wrote them.

The table holds each key as the cache's key function made it: with Django's
default one, ``KEY_PREFIX:VERSION:key``, so that ``KeyVal("prefs").set("profile")``
stores ``:1:profile``. The admin shows the key the application wrote, with
the version and prefix beside it, and searches it, by taking that layout
apart again; keys it cannot take apart are shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import default_key_func
from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BinaryField, F, Func, Value
from django.db.models.sql.compiler import SQLCompiler
from django.utils.module_loading import import_string

from ..facade import CACHE_ALIAS, keyval_cache
from ..identity import encode_name
from .lookups import BytesContains, key_contains

# PREFIX:VERSION:key of a prefix other than the cache's (another alias, an old
# KEY_PREFIX): the shortest prefix that a version follows.
_ANY_PREFIX = re.compile(r"(.*?):(-?\d+):(.*)", re.DOTALL)


@dataclass(frozen=True)
class WrittenKey:
    """A stored key taken apart: ``key`` as the application wrote it, and the
    ``version`` and ``prefix`` it was made with (None: not known)."""

    key: str
    version: int | None = None
    prefix: str | None = None


@dataclass(frozen=True)
class KeyLayout:
    """How ``caches["keyval"]`` makes keys: Django's ``PREFIX:VERSION:key``
    with its ``prefix`` (``default`` True), or a custom KEY_FUNCTION, which
    ``reverse`` (its REVERSE_KEY_FUNCTION, if configured) undoes."""

    prefix: str
    default: bool
    reverse: Callable[[str], str] | None = None

    def written(self, made: str) -> WrittenKey:
        if not self.default:
            if self.reverse is None:
                return WrittenKey(made)
            try:
                return WrittenKey(self.reverse(made))
            except Exception:  # a row another key function made: shown as stored
                return WrittenKey(made)
        head = f"{self.prefix}:"
        if made.startswith(head):
            version, colon, key = made[len(head) :].partition(":")
            if colon and re.fullmatch(r"-?\d+", version):
                return WrittenKey(key, int(version), self.prefix)
        match = _ANY_PREFIX.fullmatch(made)
        if match is None:
            return WrittenKey(made)
        return WrittenKey(match[3], int(match[2]), match[1])

    def is_made(self, text: str) -> bool:
        """Whether ``text`` starts as a made key does (``:1:``), prefix and
        version included."""
        return self.default and re.match(rf"{re.escape(self.prefix)}:-?\d+:", text) is not None

    def search(self, text: str) -> BytesContains:
        """The condition "the key contains ``text``": the key as written,
        unless ``text`` is itself a made key (``:1:user``), which is then
        looked for in the key as stored, as it is for a custom key function."""
        if not self.default or self.is_made(text):
            return key_contains(text)
        needle = Value(encode_name(text), output_field=BinaryField())
        return BytesContains(WrittenPart(F("key"), len(encode_name(self.prefix)) + 2), needle)


def key_layout() -> KeyLayout:
    backend = keyval_cache()
    options: dict[str, Any] = settings.CACHES.get(CACHE_ALIAS, {}).get("OPTIONS") or {}
    reverse = options.get("REVERSE_KEY_FUNCTION")
    if isinstance(reverse, str):
        reverse = import_string(reverse)
    return KeyLayout(backend.key_prefix, backend.key_func is default_key_func, reverse)


class WrittenPart(Func):
    """The bytes of a made key after ``PREFIX:VERSION:``: ``start`` is the
    (1-based) position just past ``PREFIX:``, and the part begins past the
    next colon."""

    output_field = BinaryField()

    def __init__(self, expression: Any, start: int) -> None:
        super().__init__(expression)
        self.start = int(start)

    def _compile(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, template: str
    ) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        # The column appears twice; the start is an int, inlined.
        return template.format(key=sql, start=self.start), [*params, *params]

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotSupportedError(f"no key search on {connection.vendor}")

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        return self._compile(
            compiler, connection, "substr({key}, {start} + instr(substr({key}, {start}), X'3A'))"
        )

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> Any:
        return self._compile(
            compiler,
            connection,
            "substring({key} from {start} + "
            "position(decode('3a', 'hex') in substring({key} from {start})))",
        )

    def as_mysql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> Any:
        return self._compile(
            compiler,
            connection,
            "SUBSTRING({key}, {start} + LOCATE(X'3A', SUBSTRING({key}, {start})))",
        )
