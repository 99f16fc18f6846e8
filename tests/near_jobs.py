"""Jobs of the other process in ``tests/test_near.py``: they run in a
:class:`tests.concurrency_worker.WorkerPool` worker, a process of its own with
its own connections, and write the way another web worker would."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.db import connections, transaction

from keyval_backend.cache import KeyValCache
from keyval_backend.near.postgresql import APPLICATION_NAME

STORE = "near-test"


def writer() -> KeyValCache:
    """The other process's backend: the settings' ``keyval`` alias (no near
    cache, the suite's serializer) bound to the test's store."""
    cache = caches["keyval"]
    assert isinstance(cache, KeyValCache)
    return cache.store(STORE)


def set_value(worker: int, thread: int, key: str, value: Any) -> bool:
    return writer().set(key, value)


def set_then_roll_back(worker: int, thread: int, key: str, value: Any) -> str:
    try:
        with transaction.atomic():
            writer().set(key, value)
            raise RuntimeError("roll back")
    except RuntimeError:
        return "rolled back"


def delete_key(worker: int, thread: int, key: str) -> bool:
    return writer().delete(key)


def edit_through_orm(worker: int, thread: int, key: str, value: Any) -> int:
    """What the admin does: a save of the Entry row through the ORM."""
    from keyval_backend.models import Entry

    cache = writer()
    cache.set(key, "placeholder")
    row = Entry.objects.get(store_hash=cache._store_hash, key_hash=cache._key_hash(key, None))
    fmt, data, number = cache._codec.encode(cache._identity(row.key_hash), value)
    row.format, row.value, row.number = fmt, data, number
    row.save()
    return row.pk


def terminate_listeners(worker: int, thread: int) -> int:
    """Kill every near-cache listener's server connection (PostgreSQL)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            [APPLICATION_NAME],
        )
        return int(cursor.fetchone()[0])
