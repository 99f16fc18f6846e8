"""The two caches the ``tests/test_redis_*.py`` suite runs against.

By default every test gets a fresh KeyValCache on the test database. With
``KEYVAL_TEST_REFERENCE=redis`` it gets django-redis's RedisCache on
``redis://127.0.0.1:6379/15`` instead (flushed before and after each test),
so that every expectation the suite writes down is first checked against
real django-redis and Redis. Tests of what only keyval_backend has, or of
cases where django-redis departs from Redis, are skipped there with
:func:`ours_only` and :func:`unlike_django_redis`.

Time: a KeyValCache test moves time with freezegun; Redis keeps its own
clock, so :class:`RedisClock` makes time pass there by taking the elapsed
milliseconds off every key's TTL (deleting the keys whose TTL runs out).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import async_to_sync

REFERENCE = os.environ.get("KEYVAL_TEST_REFERENCE", "") == "redis"
REDIS_URL = "redis://127.0.0.1:6379/15"
KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
REDIS_BACKEND = "django_redis.cache.RedisCache"
# The store of the KeyValCache the suite builds.
STORE = "redis-api"
REDIS_SERIALIZERS = {
    "pickle": "django_redis.serializers.pickle.PickleSerializer",
    "json": "django_redis.serializers.json.JSONSerializer",
}

if REFERENCE:
    from redis.exceptions import LockError, LockNotOwnedError, ResponseError

    # What a command on a key of the wrong kind raises.
    WrongType: type[Exception] = ResponseError
else:
    from keyval_backend.exceptions import (  # type: ignore[assignment]
        LockError,
        LockNotOwnedError,
        WrongTypeError,
    )

    WrongType = WrongTypeError

__all__ = [
    "REFERENCE",
    "LockError",
    "LockNotOwnedError",
    "WrongType",
    "call_async",
    "ours_only",
    "unlike_django_redis",
]


def ours_only(reason: str) -> pytest.MarkDecorator:
    """Skip under the reference: keyval_backend's own behaviour, which
    django-redis 7 does not have (``reason`` says what)."""
    return pytest.mark.skipif(REFERENCE, reason=f"not in django-redis 7: {reason}")


def unlike_django_redis(reason: str) -> pytest.MarkDecorator:
    """Skip under the reference: the test follows Redis where django-redis
    does not (``reason`` says how django-redis differs)."""
    return pytest.mark.skipif(REFERENCE, reason=f"django-redis departs from Redis: {reason}")


def cache_spec(serializer: str, **params: Any) -> tuple[str, str, dict[str, Any]]:
    """(backend path, LOCATION, params) of the cache under test, with
    ``TIMEOUT=None`` unless given (KeyValCache's default, not RedisCache's
    300 s) and the suite's serializer. Picklable, for worker processes."""
    params.setdefault("TIMEOUT", None)
    options = dict(params.pop("OPTIONS", None) or {})
    if REFERENCE:
        options.setdefault("SERIALIZER", REDIS_SERIALIZERS[serializer])
        return REDIS_BACKEND, REDIS_URL, {**params, "OPTIONS": options}
    options.setdefault("SERIALIZER", serializer)
    return KEYVAL_BACKEND, STORE, {**params, "OPTIONS": options}


def build_cache(spec: tuple[str, str, dict[str, Any]]) -> Any:
    """The cache a :func:`cache_spec` describes."""
    from django.utils.module_loading import import_string

    backend, location, params = spec
    return import_string(backend)(location, params)


def flush_reference() -> None:
    """Empty the reference's Redis database."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def raw_client(cache: Any) -> Any:
    """The redis-py client behind a RedisCache."""
    return cache.client.get_client(write=True)


def force_expire(cache: Any, key: str, version: int | None = None) -> None:
    """Make ``key`` expire now, as if its timeout had run out, without
    waiting: on Redis by a 1 ms PEXPIRE, on the database by moving the
    row's ``expires`` into the past (which also serves keys whose expiry
    the database's clock decides, such as locks)."""
    made = cache.make_key(key, version=version)
    if REFERENCE:
        client = raw_client(cache)
        assert client.pexpire(made, 1)
        while client.exists(made):
            time.sleep(0.001)
        return
    from keyval_backend.identity import encode_name, name_hash
    from keyval_backend.models import Entry

    rows = Entry.objects.filter(
        store_hash=name_hash(encode_name(cache.store_name)),
        key_hash=name_hash(encode_name(made)),
    )
    assert rows.update(expires=time.time() - 60) == 1


class RedisClock:
    """Time passing on the reference's Redis: :meth:`tick` takes the
    seconds off every key's remaining time to live."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def tick(self, seconds: float) -> None:
        lost = round(seconds * 1000)
        for key in self.client.scan_iter(count=1000):
            left = self.client.pttl(key)
            if left < 0:
                continue  # persistent (-1) or already gone (-2)
            if left <= lost:
                self.client.delete(key)
            else:
                self.client.pexpire(key, left - lost)


@contextmanager
def clock() -> Iterator[Any]:
    """Something with ``tick(seconds)``: freezegun for a KeyValCache, a
    :class:`RedisClock` for the reference (whose time is not stopped)."""
    if REFERENCE:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            yield RedisClock(client)
        finally:
            client.close()
        return
    from freezegun import freeze_time

    with freeze_time("2030-01-01 00:00:00") as factory:
        yield factory


def exact_or_close(expected_ms: int) -> Any:
    """A PTTL that is ``expected_ms`` with time stopped; on the reference,
    whose clock runs, up to a quarter of a second less."""
    if REFERENCE:
        return pytest.approx(expected_ms - 125, abs=125)
    return expected_ms


def call_async(cache: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """``cache.a<method>(*args, **kwargs)`` run to completion from sync code.

    Through asgiref's ``async_to_sync``, not ``asyncio.run``: the backend's
    ``sync_to_async(thread_sensitive=True)`` then comes back to this thread
    and its connection, inside the test's transaction.
    """
    coroutine_function: Callable[..., Any] = getattr(cache, f"a{method}")
    return async_to_sync(coroutine_function)(*args, **kwargs)
