"""The contenders of a run, each behind the same small interface.

Every contender exposes the benchmarked operations as plain callables
(``get``, ``set``, ``add``, ``delete``, ``incr``, ``pop``, ``get_many``,
``set_many``, ``delete_many``), bound straight to the cache's own methods
wherever it has them, so that the harness adds the same single call to all.
``fill`` and ``purge`` prepare and tidy up outside the timed calls.

All caches are configured with ``TIMEOUT: None`` (keys never expire), which is
KeyValCache's default, so every contender does the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .databases import Database

# name -> label, in the order of the tables.
CONTENDERS = {
    "keyval": "KeyValCache",
    "floor": "raw driver floor",
    "dbcache": "DatabaseCache",
    "redis": "django-redis",
    "diskcache": "diskcache",
}
KEYVAL_STORE = "bench"
FLOOR_STORE = "floor"
DBCACHE_TABLE = "keyval_bench_django_cache"
REDIS_URL = os.environ.get("KEYVAL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
# Rows per untimed set_many when filling a Django cache.
FILL_CHUNK = 500


@dataclass
class Contender:
    name: str
    get: Callable[..., Any]
    set: Callable[..., Any]
    add: Callable[..., Any]
    delete: Callable[..., Any]
    incr: Callable[..., Any]
    pop: Callable[..., Any]
    get_many: Callable[..., Any]
    set_many: Callable[..., Any]
    delete_many: Callable[..., Any]
    fill: Callable[[Mapping[str, Any]], None]
    close: Callable[[], None]

    @property
    def label(self) -> str:
        return CONTENDERS.get(self.name, self.name)

    def purge(self, keys: Iterable[str]) -> None:
        self.delete_many(list(keys))


def caches_setting(names: Iterable[str], workdir: str, setting: str) -> dict[str, Any]:
    """``CACHES`` for the contenders that are Django cache backends."""
    caches: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # Named "keyval" so that it is the cache the KeyVal facade would use.
        "keyval": {"BACKEND": "keyval_backend.cache.KeyValCache", "LOCATION": KEYVAL_STORE},
    }
    names = set(names)
    if "dbcache" in names:
        caches["dbcache"] = {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": DBCACHE_TABLE,
            "TIMEOUT": None,
            # Large enough never to cull the benchmark's keys; DatabaseCache
            # still counts the rows on every write, as it always does.
            "OPTIONS": {"MAX_ENTRIES": 10**9},
        }
    if "redis" in names:
        caches["redis"] = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": None,
        }
    if "diskcache" in names:
        caches["diskcache"] = {
            "BACKEND": "diskcache.DjangoCache",
            "LOCATION": os.path.join(workdir, f"diskcache-{setting}"),
            "TIMEOUT": None,
        }
    return caches


def django_contender(name: str, cache: Any, pop: Callable[..., Any]) -> Contender:
    from django.core.cache.backends.db import DatabaseCache

    def fill(data: Mapping[str, Any]) -> None:
        items = list(data.items())
        for start in range(0, len(items), FILL_CHUNK):
            cache.set_many(dict(items[start : start + FILL_CHUNK]))

    return Contender(
        name=name,
        get=cache.get,
        set=cache.set,
        add=cache.add,
        delete=cache.delete,
        incr=cache.incr,
        pop=pop,
        get_many=cache.get_many,
        set_many=cache.set_many,
        delete_many=cache.delete_many,
        fill=_dbcache_fill(cache) if isinstance(cache, DatabaseCache) else fill,
        close=cache.close,
    )


def _dbcache_fill(cache: Any) -> Callable[[Mapping[str, Any]], None]:
    """Fill a DatabaseCache with rows as its set() writes them (base64 of the
    pickle, ``datetime.max`` for no expiry), in one transaction and one
    executemany: its set_many is a set() per key, each with a COUNT(*) and its
    own commit, which would take minutes for a large table."""
    import base64
    import pickle
    from datetime import datetime

    from django.db import connections, router, transaction

    def fill(data: Mapping[str, Any]) -> None:
        alias = router.db_for_write(cache.cache_model_class)
        connection = connections[alias]
        qn = connection.ops.quote_name
        sql = (
            f"INSERT INTO {qn(cache._table)} ({qn('cache_key')}, {qn('value')}, {qn('expires')}) "
            "VALUES (%s, %s, %s)"
        )
        expires = connection.ops.adapt_datetimefield_value(datetime.max.replace(microsecond=0))
        rows = [
            (
                cache.make_and_validate_key(key),
                base64.b64encode(pickle.dumps(value, cache.pickle_protocol)).decode("latin1"),
                expires,
            )
            for key, value in data.items()
        ]
        with transaction.atomic(using=alias):
            cache.delete_many(list(data))
            with connection.cursor() as cursor:
                cursor.executemany(sql, rows)

    return fill


def _get_then_delete(cache: Any) -> Callable[..., Any]:
    """pop for a cache that has none: what an application would write (two
    statements, not atomic)."""
    get, delete = cache.get, cache.delete

    def pop(key: str) -> Any:
        value = get(key)
        delete(key)
        return value

    return pop


def _redis_getdel(cache: Any) -> Callable[..., Any]:
    """pop on Redis: GETDEL (one round trip, atomic) through django-redis's
    key function and serializer, the best an application can do there."""
    client = cache.client
    make_key, decode = client.make_key, client.decode
    raw = client.get_client(write=True)

    def pop(key: str) -> Any:
        value = raw.getdel(make_key(key))
        return None if value is None else decode(value)

    return pop


def build(name: str, db: Database, secret: str) -> Contender:
    """The contender ``name`` on the configured database (Django is set up)."""
    from django.core.cache import caches

    if name == "keyval":
        cache = caches["keyval"]
        cache.clear()
        return django_contender(name, cache, cache.pop)
    if name == "dbcache":
        cache = caches["dbcache"]
        cache.clear()
        return django_contender(name, cache, _get_then_delete(cache))
    if name == "redis":
        cache = caches["redis"]
        cache.clear()  # FLUSHDB of the benchmark's database
        contender = django_contender(name, cache, _redis_getdel(cache))

        def close() -> None:
            cache.clear()  # leave the database as empty as it was found
            cache.close()

        contender.close = close
        return contender
    if name == "diskcache":
        cache = caches["diskcache"]
        cache.clear()
        return django_contender(name, cache, cache.pop)
    if name == "floor":
        from keyval_backend.cache import TABLE
        from keyval_backend.sql import dialect_for

        from .floor import Floor

        return floor_contender(name, Floor(db, dialect_for("default", TABLE), secret, FLOOR_STORE))
    raise ValueError(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")


def floor_contender(name: str, floor: Any) -> Contender:
    """A :class:`~benchmarks.floor.Floor` as a contender."""
    return Contender(
        name=name,
        get=floor.get,
        set=floor.set,
        add=floor.add,
        delete=floor.delete,
        incr=floor.incr,
        pop=floor.pop,
        get_many=floor.get_many,
        set_many=floor.set_many,
        delete_many=floor.delete_many,
        fill=floor.fill,
        close=floor.close,
    )
