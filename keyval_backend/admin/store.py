"""Where the admin reads and writes: the entries of the database of
``caches["keyval"]``, and that cache bound to one store."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from ..cache import KeyValCache
from ..facade import keyval_cache
from ..identity import encode_name, name_hash
from ..models import Entry


def entries() -> QuerySet[Entry]:
    """Entries of the database ``caches["keyval"]`` writes to, so that
    what the admin shows is what its writes change."""
    return Entry.objects.using(keyval_cache().database)


def live(now: float) -> Q:
    return Q(expires__isnull=True) | Q(expires__gt=now)


def hashes(store: str, key: str) -> dict[str, str]:
    return {
        "store_hash": name_hash(encode_name(store)),
        "key_hash": name_hash(encode_name(key)),
    }


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
