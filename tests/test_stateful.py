"""Random sequences of operations, checked step by step against a plain dict.

Example-based tests pin what their authors thought of; these machines let
Hypothesis combine operations, stores, keys, values, timeouts and the passing
of time in orders nobody wrote down, and compare every answer with a model
that is nothing but a dict of ``(value, expires_at)``. Time is frozen with
freezegun (never slept through) and moved by a rule, so expiry is exact.

Two machines, because the two APIs promise different things: :class:`FacadeMachine`
drives ``KeyVal`` (any ``str`` is a key, surrogates included; misses raise
KeyError), :class:`CacheMachine` drives ``caches["keyval"]`` and ``.store(name)``
with Django's cache semantics (versions, defaults, ``add``, ``incr``, ``touch``).

Bounded for CI: ``KEYVAL_STATEFUL_EXAMPLES`` runs of ``KEYVAL_STATEFUL_STEPS``
steps each (defaults below); raise both for a longer hunt.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, CacheKeyWarning
from freezegun import freeze_time
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    rule,
    run_state_machine_as_test,
)

from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache
from keyval_backend.patterns import glob_escape

EXAMPLES = int(os.environ.get("KEYVAL_STATEFUL_EXAMPLES", "25"))
STEPS = int(os.environ.get("KEYVAL_STATEFUL_STEPS", "40"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    # Failures print their steps; an example database would only litter the checkout.
    database=None,
)

# Keys that have broken key-value stores before: empty, NUL, SQL and LIKE
# metacharacters, names that collations fold together, astral and invisible
# characters, and keys far beyond any index length.
SPECIAL_KEYS = [
    "",
    "\x00",
    "a\x00b",
    " ",
    "a ",
    "%",
    "_",
    "\\",
    "'",
    "'; DROP TABLE keyval_backend_entry; --",
    "a",
    "A",
    "á",
    "ß",
    "ss",
    "\U0001f600",
    "\ufeff",
    ":1:a",
    "a" * 10_000,
    "é" * 10_000,
]
STORES = ["default", "", "other", "\x00", "Other", "ünï%_", "s" * 300]
# Surrogate-free text (Hypothesis' default alphabet), short enough to collide.
SHORT_TEXT = st.text(max_size=6)
# A 10,000-character key of varied content without a 10,000-character draw.
LONG_TEXT = st.text(min_size=1, max_size=3).map(lambda unit: (unit * 10_000)[:10_000])
CACHE_KEYS = st.one_of(st.sampled_from(SPECIAL_KEYS), SHORT_TEXT, LONG_TEXT)
# The facade takes any str, lone surrogates included.
SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
FACADE_KEYS = st.one_of(CACHE_KEYS, SURROGATES, st.tuples(SHORT_TEXT, SURROGATES).map("".join))
STORE_NAMES = st.one_of(st.sampled_from(STORES), SHORT_TEXT)

# Under the json serializer (KEYVAL_TEST_SERIALIZER=json) the values are the
# ones JSON gives back exactly: no bytes, and no tuples (they come back lists).
PICKLING = getattr(django_settings, "KEYVAL_TEST_SERIALIZER", "pickle") == "pickle"
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    # The edges of the native 64-bit column, and just beyond them.
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, -(2**100)]),
    st.floats(allow_nan=False),
    st.text(),
    *([st.binary()] if PICKLING else []),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        *([st.tuples(children, children)] if PICKLING else []),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
    ),
    max_leaves=8,
)
# DEFAULT_TIMEOUT is the backend's default: None, never expire. Zero and
# negative timeouts expire at once, as Django specifies.
TIMEOUTS = st.one_of(
    st.just(DEFAULT_TIMEOUT),
    st.none(),
    st.integers(min_value=-2, max_value=100),
    st.floats(min_value=0.001, max_value=100),
)
TICKS = st.one_of(st.sampled_from([0.5, 1, 10, 100]), st.floats(min_value=0, max_value=120))
DELTAS = st.one_of(
    st.integers(min_value=-10, max_value=10),
    st.sampled_from([2**62, 2**63 - 1, -(2**63), 2**64, -(2**70)]),
)
VERSIONS = st.sampled_from([None, 1, 2])

MISSING: Any = object()


def expires_at(timeout: Any) -> float | None:
    """When a value written now with ``timeout`` stops being live, computed
    as Django's ``get_backend_timeout`` does (so the floats are identical)."""
    if timeout is DEFAULT_TIMEOUT or timeout is None:
        return None
    return time.time() + (-1 if timeout == 0 else timeout)


def assert_same(actual: Any, expected: Any) -> None:
    """Equal and of the same types all the way down: ``1 == 1.0 == True``
    and ``0.0 == -0.0``, but a store must give back exactly what it got.
    ``repr`` tells all of these apart, and round-trips floats exactly."""
    assert repr(actual) == repr(expected)


class Model:
    """The expected contents: identity -> (value, expires_at or None)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[Any, ...], tuple[Any, float | None]] = {}

    def live(self, ident: tuple[Any, ...]) -> bool:
        entry = self.entries.get(ident)
        return entry is not None and (entry[1] is None or entry[1] > time.time())

    def value(self, ident: tuple[Any, ...]) -> Any:
        return self.entries[ident][0] if self.live(ident) else MISSING

    def live_items(self) -> dict[tuple[Any, ...], Any]:
        return {ident: self.entries[ident][0] for ident in self.entries if self.live(ident)}

    def set(self, ident: tuple[Any, ...], value: Any, timeout: Any) -> bool:
        """Write; True if no live value was there."""
        new = not self.live(ident)
        self.entries[ident] = (value, expires_at(timeout))
        return new

    def pop(self, ident: tuple[Any, ...]) -> Any:
        value = self.value(ident)
        self.entries.pop(ident, None)
        return value

    def drop(self, keep: Callable[[tuple[Any, ...]], bool]) -> None:
        self.entries = {ident: entry for ident, entry in self.entries.items() if keep(ident)}


class TimedMachine(RuleBasedStateMachine):
    """Frozen time for the whole run, an empty table, and the key pool.

    Keys come either fresh from a strategy or from the keys used so far, so
    that reads, pops and increments often meet a key that exists.
    """

    def __init__(self) -> None:
        super().__init__()
        # Hypothesis's own clock stops too. Exempting it (ignore=["hypothesis"])
        # would be worse: freezegun looks a few frames up the stack on every
        # call, and the rules run under Hypothesis's frames, so calls made at
        # different depths would see different clocks.
        self._freezer = freeze_time("2030-01-01 00:00:00")
        self._frozen = self._freezer.start()
        self.model = Model()
        self._used: list[str] = []
        KeyVal.flush_all()

    def teardown(self) -> None:
        self._freezer.stop()

    def pick(self, data: st.DataObject, fresh: st.SearchStrategy[str]) -> str:
        if self._used and data.draw(st.booleans(), label="reuse a key"):
            return data.draw(st.sampled_from(self._used), label="used key")
        key = data.draw(fresh, label="fresh key")
        self._used.append(key)
        return key

    @rule(seconds=TICKS)
    def tick(self, seconds: float) -> None:
        self._frozen.tick(seconds)


class FacadeMachine(TimedMachine):
    """``KeyVal`` against the model: identities are ``(store, key)``."""

    def kv(self, data: st.DataObject) -> tuple[KeyVal, str]:
        store = data.draw(STORE_NAMES, label="store")
        return KeyVal(store), self.pick(data, FACADE_KEYS)

    @rule(data=st.data(), value=VALUES, timeout=TIMEOUTS)
    def set(self, data: st.DataObject, value: Any, timeout: Any) -> None:
        kv, key = self.kv(data)
        assert kv.set(key, value, timeout) is self.model.set((kv.name, key), value, timeout)

    @rule(data=st.data(), value=VALUES)
    def setitem(self, data: st.DataObject, value: Any) -> None:
        kv, key = self.kv(data)
        kv[key] = value
        self.model.set((kv.name, key), value, DEFAULT_TIMEOUT)

    @rule(data=st.data(), subscript=st.booleans())
    def get(self, data: st.DataObject, subscript: bool) -> None:
        kv, key = self.kv(data)
        expected = self.model.value((kv.name, key))
        if expected is MISSING:
            with pytest.raises(KeyError):
                kv[key] if subscript else kv.get(key)
        else:
            assert_same(kv[key] if subscript else kv.get(key), expected)

    @rule(data=st.data())
    def get_default(self, data: st.DataObject) -> None:
        kv, key = self.kv(data)
        expected = self.model.value((kv.name, key))
        assert_same(kv.get_default(key, MISSING), expected)

    @rule(data=st.data())
    def pop(self, data: st.DataObject) -> None:
        kv, key = self.kv(data)
        expected = self.model.pop((kv.name, key))
        if expected is MISSING:
            with pytest.raises(KeyError):
                kv.pop(key)
        else:
            assert_same(kv.pop(key), expected)

    @rule(data=st.data())
    def pop_default(self, data: st.DataObject) -> None:
        kv, key = self.kv(data)
        assert_same(kv.pop_default(key, MISSING), self.model.pop((kv.name, key)))

    @rule(data=st.data(), contains=st.booleans())
    def exists(self, data: st.DataObject, contains: bool) -> None:
        kv, key = self.kv(data)
        found = key in kv if contains else kv.exists(key)
        assert found is self.model.live((kv.name, key))

    @rule(data=st.data(), how=st.sampled_from(["delete", "ignore_keyerror", "delitem"]))
    def delete(self, data: st.DataObject, how: str) -> None:
        kv, key = self.kv(data)
        existed = self.model.pop((kv.name, key)) is not MISSING
        if how == "ignore_keyerror":
            assert kv.delete(key, ignore_keyerror=True) is existed
        elif not existed:
            with pytest.raises(KeyError):
                kv.delete(key) if how == "delete" else kv.__delitem__(key)
        elif how == "delete":
            assert kv.delete(key) is True
        else:
            del kv[key]

    @rule(data=st.data(), value=VALUES, timeout=TIMEOUTS)
    def add(self, data: st.DataObject, value: Any, timeout: Any) -> None:
        """``add`` through the cache view the facade itself uses."""
        kv, key = self.kv(data)
        view = caches["keyval"].facade_view(kv.name)
        expected = not self.model.live((kv.name, key))
        if expected:
            self.model.set((kv.name, key), value, timeout)
        assert view.add(key, value, timeout) is expected

    @rule(data=st.data(), delta=DELTAS)
    def incr(self, data: st.DataObject, delta: int) -> None:
        """``incr`` through the facade's cache view: ValueError on a miss,
        TypeError on a value that cannot be added to, expiry kept."""
        kv, key = self.kv(data)
        view = caches["keyval"].facade_view(kv.name)
        check_incr(self.model, (kv.name, key), view, key, delta)

    @rule(store=STORE_NAMES)
    def flush(self, store: str) -> None:
        KeyVal(store).flush()
        self.model.drop(lambda ident: ident[0] != store)

    @rule()
    def flush_all(self) -> None:
        KeyVal.flush_all()
        self.model.drop(lambda ident: False)

    @rule(data=st.data(), bad=st.one_of(st.integers(), st.binary(), st.none()))
    def non_str_key(self, data: st.DataObject, bad: Any) -> None:
        """A key that is not a str is refused before anything is read or written."""
        kv = KeyVal(data.draw(STORE_NAMES, label="store"))
        for call in (kv.get, kv.pop, kv.exists, kv.delete, lambda k: kv.set(k, 1)):
            with pytest.raises(TypeError):
                call(bad)
        assert bad not in kv

    @rule(store=STORE_NAMES, data=st.data())
    def listing(self, store: str, data: st.DataObject) -> None:
        """len, iteration, keys/items by prefix and values of one store."""
        kv = KeyVal(store)
        live = {ident[1]: value for ident, value in self.model.live_items().items()
                if ident[0] == store}  # fmt: skip
        prefix = data.draw(st.one_of(st.just(""), st.sampled_from(sorted(live) or [""]).map(
            lambda key: key[: len(key) // 2]), SHORT_TEXT), label="prefix")  # fmt: skip
        assert len(kv) == len(live)
        assert sorted(kv) == sorted(live)
        wanted = {key: value for key, value in live.items() if key.startswith(prefix)}
        assert sorted(kv.keys(prefix)) == sorted(wanted)
        items = list(kv.items(prefix))
        assert len(items) == len(wanted)
        for key, value in items:
            assert_same(value, wanted[key])
        assert sorted(map(repr, kv.values())) == sorted(map(repr, live.values()))


class CacheMachine(TimedMachine):
    """``caches["keyval"]`` and its ``.store(name)`` views against the model:
    identities are ``(store, version, key)``."""

    def cache(self, data: st.DataObject) -> KeyValCache:
        backend = caches["keyval"]
        store = data.draw(st.one_of(st.none(), STORE_NAMES), label="store")
        return backend if store is None else backend.store(store)

    def target(self, data: st.DataObject) -> tuple[KeyValCache, str, int | None, tuple[Any, ...]]:
        """A store view, a key and a version, and the model identity they name."""
        cache = self.cache(data)
        key = self.pick(data, CACHE_KEYS)
        version = data.draw(VERSIONS, label="version")
        return cache, key, version, ident(cache, key, version)

    @rule(data=st.data(), value=VALUES, timeout=TIMEOUTS, upsert=st.booleans())
    def set(self, data: st.DataObject, value: Any, timeout: Any, upsert: bool) -> None:
        cache, key, version, identity = self.target(data)
        new = self.model.set(identity, value, timeout)
        if upsert:
            assert cache.upsert(key, value, timeout, version=version) is new
        else:
            assert cache.set(key, value, timeout, version=version) is True

    @rule(data=st.data(), value=VALUES, timeout=TIMEOUTS)
    def add(self, data: st.DataObject, value: Any, timeout: Any) -> None:
        cache, key, version, identity = self.target(data)
        expected = not self.model.live(identity)
        if expected:
            self.model.set(identity, value, timeout)
        assert cache.add(key, value, timeout, version=version) is expected

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        cache, key, version, identity = self.target(data)
        assert_same(cache.get(key, MISSING, version=version), self.model.value(identity))

    @rule(data=st.data())
    def has_key(self, data: st.DataObject) -> None:
        cache, key, version, identity = self.target(data)
        assert cache.has_key(key, version=version) is self.model.live(identity)

    @rule(data=st.data())
    def pop(self, data: st.DataObject) -> None:
        cache, key, version, identity = self.target(data)
        assert_same(cache.pop(key, MISSING, version=version), self.model.pop(identity))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        cache, key, version, identity = self.target(data)
        existed = self.model.pop(identity) is not MISSING
        assert cache.delete(key, version=version) is existed

    @rule(data=st.data(), delta=DELTAS, decr=st.booleans())
    def incr(self, data: st.DataObject, delta: int, decr: bool) -> None:
        cache, key, version, identity = self.target(data)
        check_incr(self.model, identity, cache, key, -delta if decr else delta, version, decr)

    @rule(data=st.data(), timeout=TIMEOUTS, persist=st.booleans())
    def touch(self, data: st.DataObject, timeout: Any, persist: bool) -> None:
        cache, key, version, identity = self.target(data)
        live = self.model.live(identity)
        had_expiry = live and self.model.entries[identity][1] is not None
        if live:
            value = self.model.entries[identity][0]
            self.model.entries[identity] = (value, None if persist else expires_at(timeout))
        if persist:
            # Redis's PERSIST: True only when an expiry was removed.
            assert cache.persist(key, version=version) is had_expiry
        else:
            assert cache.touch(key, timeout, version=version) is live

    @rule(data=st.data())
    def ttl(self, data: st.DataObject) -> None:
        cache, key, version, identity = self.target(data)
        if not self.model.live(identity):
            with pytest.raises(KeyError):
                cache.expires_in(key, version=version)
            assert cache.ttl(key, version=version) == 0
            return
        expires = self.model.entries[identity][1]
        expected = None if expires is None else expires - time.time()
        assert cache.expires_in(key, version=version) == expected

    @rule(data=st.data(), size=st.integers(min_value=0, max_value=5))
    def get_many(self, data: st.DataObject, size: int) -> None:
        cache = self.cache(data)
        version = data.draw(VERSIONS, label="version")
        keys = [self.pick(data, CACHE_KEYS) for _ in range(size)]
        expected = {}
        for key in keys:
            value = self.model.value(ident(cache, key, version))
            if value is not MISSING:
                expected[key] = value
        found = cache.get_many(keys, version=version)
        assert list(found) == [key for key in dict.fromkeys(keys) if key in expected]
        for key, value in found.items():
            assert_same(value, expected[key])

    @rule(data=st.data(), size=st.integers(min_value=0, max_value=5), timeout=TIMEOUTS)
    def set_many(self, data: st.DataObject, size: int, timeout: Any) -> None:
        cache = self.cache(data)
        version = data.draw(VERSIONS, label="version")
        pairs = {self.pick(data, CACHE_KEYS): data.draw(VALUES, label="value") for _ in range(size)}
        assert cache.set_many(pairs, timeout, version=version) == []
        for key, value in pairs.items():
            self.model.set(ident(cache, key, version), value, timeout)

    @rule(data=st.data(), size=st.integers(min_value=0, max_value=5))
    def delete_many(self, data: st.DataObject, size: int) -> None:
        cache = self.cache(data)
        version = data.draw(VERSIONS, label="version")
        keys = [self.pick(data, CACHE_KEYS) for _ in range(size)]
        assert cache.delete_many(keys, version=version) is None
        for key in keys:
            self.model.pop(ident(cache, key, version))

    @rule(data=st.data())
    def clear(self, data: st.DataObject) -> None:
        cache = self.cache(data)
        cache.clear()
        self.model.drop(lambda identity: identity[0] != cache.store_name)

    @rule()
    def flush_all(self) -> None:
        caches["keyval"].flush_all()
        self.model.drop(lambda identity: False)

    @rule(data=st.data())
    def facade_reads_the_same(self, data: st.DataObject) -> None:
        """The facade and the cache API share rows: version 1, the same made key."""
        cache, key, _, _ = self.target(data)
        expected = self.model.value(ident(cache, key, 1))
        assert_same(KeyVal(cache.store_name).get_default(key, MISSING), expected)

    @rule(data=st.data())
    def listing(self, data: st.DataObject) -> None:
        """count, iter_keys and iter_items by prefix and version, and stores()."""
        cache = self.cache(data)
        version = data.draw(VERSIONS, label="version")
        live = self.model.live_items()
        mine = {identity[2]: value for identity, value in live.items()
                if identity[:2] == ident(cache, "", version)[:2]}  # fmt: skip
        prefix = data.draw(st.one_of(st.just(""), st.sampled_from(sorted(mine) or [""]).map(
            lambda key: key[: len(key) // 2]), SHORT_TEXT), label="prefix")  # fmt: skip
        wanted = {key: value for key, value in mine.items() if key.startswith(prefix)}
        assert cache.count(version=version) == len(mine)
        pattern = glob_escape(prefix) + "*"
        assert sorted(cache.iter_keys(pattern, version=version)) == sorted(wanted)
        items = list(cache.iter_items(prefix, version=version))
        assert len(items) == len(wanted)
        for key, value in items:
            assert_same(value, wanted[key])
        stores: dict[str, int] = {}
        for identity in live:
            stores[identity[0]] = stores.get(identity[0], 0) + 1
        assert cache.stores() == stores


def ident(cache: KeyValCache, key: str, version: int | None) -> tuple[Any, ...]:
    """The model identity of a key: version None is the cache's default."""
    return (cache.store_name, cache.version if version is None else version, key)


def check_incr(
    model: Model,
    identity: tuple[Any, ...],
    cache: KeyValCache,
    key: str,
    delta: int,
    version: int | None = None,
    decr: bool = False,
) -> None:
    """``incr`` by ``delta`` (or ``decr`` by ``-delta``) against the model:
    the sum Python makes, with the expiry unchanged; ValueError on a miss,
    TypeError when the value does not add to an int, and then no change."""
    current = model.value(identity)
    expected: Any = MISSING
    error: type[Exception] = ValueError
    if current is not MISSING:
        try:
            expected = current + delta
        except TypeError:
            error = TypeError

    def call() -> Any:
        if decr:
            return cache.decr(key, -delta, version=version)
        return cache.incr(key, delta, version=version)

    if expected is MISSING:
        with pytest.raises(error):
            call()
        return
    assert_same(call(), expected)
    model.entries[identity] = (expected, model.entries[identity][1])


@pytest.mark.parametrize("machine", [FacadeMachine, CacheMachine], ids=["facade", "cache"])
def test_random_operations_match_a_dict(db: None, machine: type[TimedMachine]) -> None:
    """Each run starts from an empty table (``KeyVal.flush_all()`` in the
    machine), inside the test's transaction."""
    with warnings.catch_warnings():
        # The cache machine uses keys that memcached could not store, on purpose.
        warnings.simplefilter("ignore", CacheKeyWarning)
        run_state_machine_as_test(machine, settings=SETTINGS)


@pytest.mark.parametrize("delta", [2**63, 2**64, -(2**63) - 1, -(2**70)])
def test_incr_by_more_than_64_bits(kv: KeyValCache, delta: int) -> None:
    """Found by :class:`CacheMachine`: a delta outside the 64-bit range must
    take the Python path like any sum that leaves it (SQLite's driver cannot
    even bind such an int), and a miss is still ValueError."""
    kv.set("n", 1)
    assert kv.incr("n", delta) == 1 + delta
    assert kv.get("n") == 1 + delta
    assert kv.decr("n", delta) == 1
    with pytest.raises(ValueError, match="not found"):
        kv.incr("missing", delta)
