"""Fixtures every test module may use: fresh caches, raw rows, frozen time.

Kept generic on purpose: anything only one module needs lives in that module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from keyval_backend.cache import KeyValCache
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"


@pytest.fixture
def use_caches(settings: Any) -> Callable[..., None]:
    """Replace ``CACHES`` for one test: ``use_caches(keyval={...}, other={...})``.

    ``default`` stays a LocMemCache. Every call gives fresh backend instances,
    so no per-instance state (cull estimates, purge counters) leaks between
    tests. Without a ``keyval`` entry the app supplies its default one.
    """

    def use(**aliases: dict[str, Any]) -> None:
        settings.CACHES = {"default": dict(LOCMEM), **aliases}

    return use


@pytest.fixture
def kv(db: None, use_caches: Callable[..., None]) -> KeyValCache:
    """A fresh ``caches["keyval"]`` with the default configuration (store
    ``"default"``), on the test database."""
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND})
    backend = caches["keyval"]
    assert isinstance(backend, KeyValCache)
    return backend


@pytest.fixture
def make_cache(db: None) -> Callable[..., KeyValCache]:
    """Build a KeyValCache directly (not through CACHES):
    ``make_cache("store", OPTIONS={...}, TIMEOUT=...)``."""

    def make(location: str = "", **params: Any) -> KeyValCache:
        return KeyValCache(location, params)

    return make


@pytest.fixture
def entry() -> Callable[..., Entry]:
    """The Entry row behind ``key`` of a cache's store (DoesNotExist if none),
    found the way the backend finds it: by the hashes of the exact names."""

    def find(cache: KeyValCache, key: str, version: int | None = None) -> Entry:
        return Entry.objects.get(
            store_hash=name_hash(encode_name(cache.store_name)),
            key_hash=name_hash(encode_name(cache.make_key(key, version))),
        )

    return find


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    """Time stopped at a fixed instant; move it with ``frozen.tick(seconds)``."""
    with freeze_time("2030-01-01 00:00:00") as factory:
        yield factory
