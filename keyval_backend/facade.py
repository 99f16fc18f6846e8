"""KeyVal: the django-keyval API, and a dict's, over ``caches["keyval"]``.

A thin layer: every call is one call of :class:`~keyval_backend.cache.KeyValCache`
bound to the store, through the same key function, so data written here is read
through the cache API and back. Unlike the cache API, any ``str`` is a valid key
and nothing warns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Final

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured

from .cache import KeyValCache
from .patterns import glob_escape
from .structures.locks import Lock

CACHE_ALIAS: Final = "keyval"
_MISSING: Any = object()


def keyval_cache() -> KeyValCache:
    """The ``caches["keyval"]`` backend of this thread."""
    try:
        backend = caches[CACHE_ALIAS]
    except InvalidCacheBackendError as exc:
        raise ImproperlyConfigured(
            f"CACHES[{CACHE_ALIAS!r}] is missing; add 'keyval_backend' to INSTALLED_APPS "
            "(which supplies it) or configure it"
        ) from exc
    if not isinstance(backend, KeyValCache):
        raise ImproperlyConfigured(
            f"CACHES[{CACHE_ALIAS!r}] must use keyval_backend.cache.KeyValCache, "
            f"not {type(backend).__module__}.{type(backend).__qualname__}"
        )
    return backend


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"KeyVal keys are str, not {type(key).__name__}")


class KeyVal:
    """A named store: ``KeyVal("settings")`` or ``KeyVal.connect("settings")``.

    After :meth:`disconnect` every method raises ``NameError``, except
    :meth:`flush_all`.
    """

    _CLOSED: ClassVar[str] = "this KeyVal was disconnected from store {name!r}"

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"store names are str, not {type(name).__name__}")
        self._name = name
        self._connected = True
        self._backend: KeyValCache | None = None
        self._view: KeyValCache | None = None

    @classmethod
    def connect(cls, name: str) -> KeyVal:
        """The same as ``KeyVal(name)``, as django-keyval spelled it."""
        return cls(name)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        state = "" if self._connected else ", disconnected"
        return f"<KeyVal {self._name!r}{state}>"

    def _store(self) -> KeyValCache:
        if not self._connected:
            raise NameError(self._CLOSED.format(name=self._name))
        # Looked up per call (caches are per thread, and tests swap CACHES);
        # the store-bound view is rebuilt only when the backend changes.
        backend = keyval_cache()
        if backend is not self._backend or self._view is None:
            self._view = backend.facade_view(self._name)
            self._backend = backend
        return self._view

    # -- the django-keyval API -------------------------------------------------

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool:
        """Store ``value``; True if ``key`` was new, False if overwritten."""
        _check_key(key)
        return self._store().upsert(key, value, timeout)

    def get(self, key: str) -> Any:
        """The value of ``key``; KeyError if it is missing."""
        _check_key(key)
        value = self._store().get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get_default(self, key: str, default: Any = None) -> Any:
        _check_key(key)
        return self._store().get(key, default)

    def pop(self, key: str) -> Any:
        """Delete ``key`` and return its value; KeyError if it is missing."""
        _check_key(key)
        value = self._store().pop(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def pop_default(self, key: str, default: Any = None) -> Any:
        _check_key(key)
        return self._store().pop(key, default)

    def exists(self, key: str) -> bool:
        _check_key(key)
        return self._store().has_key(key)

    def delete(self, key: str, ignore_keyerror: bool = False) -> bool:
        """Delete ``key``: True if it existed. A missing key raises KeyError,
        or returns False with ``ignore_keyerror=True``."""
        _check_key(key)
        deleted = self._store().delete(key)
        if not deleted and not ignore_keyerror:
            raise KeyError(key)
        return deleted

    def flush(self) -> None:
        """Delete every key of this store; an empty store is fine."""
        self._store().clear()

    @classmethod
    def flush_all(cls) -> None:
        """Delete every key of every store (callable on the class, or on an
        instance, connected or not)."""
        keyval_cache().flush_all()

    def disconnect(self, name: str | None = None) -> None:
        """Refuse every further call but :meth:`flush_all` (with NameError).

        ``name``, if given as django-keyval's README does, must be this
        store's name.
        """
        self._store()
        if name is not None and name != self._name:
            raise ValueError(f"this KeyVal is connected to {self._name!r}, not {name!r}")
        self._connected = False

    def lock(
        self,
        name: str,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> Lock:
        """A lock named ``name`` in this store, shared by every process (see
        :meth:`KeyValCache.lock <keyval_backend.cache.KeyValCache.lock>`):
        ``with KeyVal("jobs").lock("nightly", timeout=60): ...``."""
        _check_key(name)
        return self._store().lock(
            name,
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
        )

    # -- what a dict does --------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        store = self._store()  # NameError after disconnect, whatever the key
        return isinstance(key, str) and store.has_key(key)

    def __len__(self) -> int:
        return self._store().count()

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The keys, streamed a page at a time (in no particular order)."""
        return self._store().iter_keys(glob_escape(prefix) + "*")

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs, streamed as :meth:`keys`."""
        return self._store().iter_items(prefix)

    def values(self) -> Iterator[Any]:
        return (value for _, value in self.items())
