"""Fixtures every test module may use: fresh caches, raw rows, frozen time.

Kept generic on purpose: anything only one module needs lives in that module.

Every cache these fixtures configure writes with the suite's serializer,
``KEYVAL_TEST_SERIALIZER`` (see tests/settings.py), unless its OPTIONS name
one: a test about a particular serializer says so. A test that only holds
under pickle (values JSON cannot represent, pickle's own format) is marked
``@pytest.mark.pickle_only("why")`` and skipped under json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from keyval_backend.cache import KeyValCache
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry
from keyval_backend.serializers import BaseSerializer, load_serializer

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
# Set in tests/settings.py (which Django's suite's settings import too); other
# settings get the backend's default.
SERIALIZER: str = getattr(django_settings, "KEYVAL_TEST_SERIALIZER", "pickle")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, not in pyproject.toml, next to the switch it depends on.
    config.addinivalue_line(
        "markers",
        "pickle_only(reason): holds only under the pickle serializer; "
        "skipped when KEYVAL_TEST_SERIALIZER=json",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SERIALIZER == "pickle":
        return
    for item in items:
        marker = item.get_closest_marker("pickle_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else "needs the pickle serializer"
            item.add_marker(
                pytest.mark.skip(reason=f"pickle only ({reason}); this run writes {SERIALIZER}")
            )


def with_test_serializer(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a KeyValCache, with the suite's serializer unless its
    OPTIONS name one."""
    options = params.get("OPTIONS") or {}
    if "SERIALIZER" in options:
        return params
    return {**params, "OPTIONS": {**options, "SERIALIZER": SERIALIZER}}


@pytest.fixture
def suite_serializer() -> BaseSerializer:
    """The serializer the fixtures' caches write with: its ``format_tag`` is
    the format of their rows, ``loads(dumps(value))`` what they read back."""
    return load_serializer(SERIALIZER)


@pytest.fixture
def use_caches(settings: Any) -> Callable[..., None]:
    """Replace ``CACHES`` for one test: ``use_caches(keyval={...}, other={...})``.

    ``default`` stays a LocMemCache. Every call gives fresh backend instances,
    so no per-instance state (cull estimates, purge counters) leaks between
    tests. KeyValCache aliases get the suite's serializer unless they name
    one. Without a ``keyval`` entry the app supplies its default one (pickle).
    """

    def use(**aliases: dict[str, Any]) -> None:
        settings.CACHES = {
            "default": dict(LOCMEM),
            **{
                alias: with_test_serializer(params)
                if params.get("BACKEND") == KEYVAL_BACKEND
                else params
                for alias, params in aliases.items()
            },
        }

    return use


@pytest.fixture
def kv(db: None, use_caches: Callable[..., None]) -> KeyValCache:
    """A fresh ``caches["keyval"]`` with the default configuration (store
    ``"default"``) but the suite's serializer, on the test database."""
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND})
    backend = caches["keyval"]
    assert isinstance(backend, KeyValCache)
    return backend


@pytest.fixture
def make_cache(db: None) -> Callable[..., KeyValCache]:
    """Build a KeyValCache directly (not through CACHES):
    ``make_cache("store", OPTIONS={...}, TIMEOUT=...)``, with the suite's
    serializer unless OPTIONS name one."""

    def make(location: str = "", **params: Any) -> KeyValCache:
        return KeyValCache(location, with_test_serializer(params))

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


# -- the django-redis API suite (tests/test_redis_*.py, tests/redis_reference.py) --


@pytest.fixture
def make_rcache(db: None) -> Iterator[Callable[..., Any]]:
    """Build the cache the redis API tests run against: a KeyValCache on the
    test database, or with ``KEYVAL_TEST_REFERENCE=redis`` django-redis's
    RedisCache on Redis db 15 (flushed around the test). ``make_rcache(
    KEY_PREFIX=..., VERSION=..., OPTIONS=...)``; TIMEOUT defaults to None.

    ``db`` is a parameter even for the reference: asked for with
    ``request.getfixturevalue`` instead, it left the first test of a run on
    an SQLite connection that sees no tables."""
    from . import redis_reference as ref

    if ref.REFERENCE:
        ref.flush_reference()
    yield lambda **params: ref.build_cache(ref.cache_spec(SERIALIZER, **params))
    if ref.REFERENCE:
        ref.flush_reference()


@pytest.fixture
def rcache(make_rcache: Callable[..., Any]) -> Any:
    """A fresh cache of :func:`make_rcache` with the default configuration."""
    return make_rcache()


@pytest.fixture
def clock() -> Iterator[Any]:
    """Time the redis API tests move with ``clock.tick(seconds)``: stopped
    by freezegun, or on the reference, Redis's TTLs shortened."""
    from . import redis_reference as ref

    with ref.clock() as moving:
        yield moving
