"""Any ``str`` is a valid key and a valid store name, and names compare exactly.

Databases disagree about text: PostgreSQL refuses NUL, MariaDB's collations
fold case, accents and trailing spaces, LIKE treats ``%`` and ``_`` as
wildcards, surrogates are not valid UTF-8. None of that may leak through.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import caches

from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache
from keyval_backend.models import Entry
from keyval_backend.patterns import glob_escape

ODD_NAMES = {
    "empty": "",
    "10k-chars": "x" * 10_000,
    "10k-unicode": "é" * 5_000 + "🔑" * 2_500,
    "latin": "café",
    "cjk": "日本語のキー",
    "rtl": "مفتاح",
    "emoji": "🔑🗝️👩‍👩‍👧",
    "astral-max": "\U0010ffff",
    "noncharacter": "\ufffe\uffff",
    "control": "\t\n\r\x0b\x0c\x1b\x7f",
    "nul": "a\x00b",
    "only-nul": "\x00",
    "lone-high-surrogate": "\ud800",
    "lone-low-surrogate": "a\udfffb",
    "single-quote": "it's",
    "double-quote": 'say "hi"',
    "sql-injection": "'; DROP TABLE keyval_backend_entry; --",
    "comment": "-- /* */",
    "semicolon": ";",
    "percent": "%",
    "underscore": "_",
    "like-pattern": "%_%",
    "backslash": "\\",
    "escaped-wildcards": "a\\%b\\_c",
    "space": " ",
    "trailing-space": "key ",
    "colons": ":1:key",
    "bytes-lookalike": "b'\\xff'",
}


@pytest.fixture(params=ODD_NAMES.values(), ids=ODD_NAMES.keys())
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_odd_key_through_the_facade(kv: KeyValCache, name: str) -> None:
    store = KeyVal("odd")
    assert store.set(name, "value") is True
    assert store.set(name, "value") is False
    assert store.get(name) == "value"
    assert store.exists(name)
    assert name in store
    assert list(store.keys()) == [name]
    assert list(store.items()) == [(name, "value")]
    assert list(store.keys(name)) == [name]
    assert len(store) == 1
    assert store.pop(name) == "value"
    assert not store.exists(name)
    store[name] = 1
    assert store.delete(name) is True
    assert len(store) == 0


def test_odd_key_is_stored_as_its_exact_bytes(
    kv: KeyValCache, name: str, entry: Callable[..., Entry]
) -> None:
    KeyVal("odd").set(name, 1)
    row = entry(kv.store("odd"), name)
    assert bytes(row.key) == b":1:" + name.encode("utf-8", "surrogatepass")
    assert row.key_name == ":1:" + name


def test_odd_key_through_the_cache_api(kv: KeyValCache, name: str) -> None:
    # CacheKeyWarning is ignored by the project's pytest settings.
    kv.set(name, "v")
    assert kv.add(name, "other") is False
    assert kv.get(name) == "v"
    assert kv.has_key(name)
    assert kv.get_many([name, name + "!"]) == {name: "v"}
    kv.set(name, 1)
    assert kv.incr(name, 2) == 3
    assert kv.touch(name, 100) is True
    assert list(kv.iter_items()) == [(name, 3)]
    assert kv.count() == 1
    kv.delete_many([name])
    assert not kv.has_key(name)


def test_odd_store_name(kv: KeyValCache, name: str) -> None:
    store = KeyVal(name)
    store.set("k", "odd store")
    KeyVal("neighbour").set("k", "neighbour")
    assert store.get("k") == "odd store"
    assert caches["keyval"].store(name).get("k") == "odd store"
    assert kv.stores() == {name: 1, "neighbour": 1}
    assert list(store) == ["k"]
    store.flush()
    assert len(store) == 0
    assert KeyVal("neighbour").get("k") == "neighbour"


def test_odd_store_name_is_stored_as_its_exact_bytes(
    kv: KeyValCache, name: str, entry: Callable[..., Entry]
) -> None:
    KeyVal(name).set("k", 1)
    row = entry(kv.store(name), "k")
    assert bytes(row.store) == name.encode("utf-8", "surrogatepass")
    assert row.store_name == name


def test_the_table_survives_sql_in_names(kv: KeyValCache) -> None:
    hostile = ODD_NAMES["sql-injection"]
    KeyVal(hostile).set(hostile, hostile)
    assert KeyVal(hostile).get(hostile) == hostile
    assert Entry.objects.count() == 1


# -- exact comparison ----------------------------------------------------------------

LOOKALIKES = {
    "case": ["key", "Key", "KEY", "kEY"],
    "accents": ["cafe", "café", "CAFÉ", "cafe\u0301"],  # the last is decomposed (NFD)
    "trailing-space": ["k", "k ", "k  "],
    "width": ["A", "Ａ"],  # noqa: RUF001  (ASCII and full-width)
    "ligature": ["ss", "ß", "ẞ"],
    "dotless-i": ["i", "ı", "I", "İ"],  # noqa: RUF001
}


@pytest.fixture(params=LOOKALIKES.values(), ids=LOOKALIKES.keys())
def lookalikes(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


def test_lookalike_keys_each_on_its_own(kv: KeyValCache, lookalikes: list[str]) -> None:
    store = KeyVal("s")
    for written in lookalikes:
        store.flush()
        store.set(written, written)
        for other in lookalikes:
            assert store.exists(other) is (other == written), (written, other)
        assert list(store) == [written]
        assert list(store.keys(written)) == [written]


def test_lookalike_keys_together(kv: KeyValCache, lookalikes: list[str]) -> None:
    store = KeyVal("s")
    for name in lookalikes:
        assert store.set(name, name) is True
    assert len(store) == len(lookalikes)
    for name in lookalikes:
        assert store.get(name) == name
    assert sorted(store.items()) == sorted((name, name) for name in lookalikes)
    assert kv.store("s").get_many(lookalikes) == {name: name for name in lookalikes}
    store.delete(lookalikes[0])
    assert sorted(store) == sorted(lookalikes[1:])


def test_lookalike_store_names_each_on_its_own(kv: KeyValCache, lookalikes: list[str]) -> None:
    for written in lookalikes:
        KeyVal.flush_all()
        KeyVal(written).set("k", written)
        for other in lookalikes:
            assert KeyVal(other).exists("k") is (other == written), (written, other)
        assert kv.stores() == {written: 1}


def test_lookalike_store_names_together(kv: KeyValCache, lookalikes: list[str]) -> None:
    for name in lookalikes:
        assert KeyVal(name).set("k", name) is True
    for name in lookalikes:
        assert KeyVal(name).get("k") == name
        assert len(KeyVal(name)) == 1
    assert kv.stores() == dict.fromkeys(lookalikes, 1)
    KeyVal(lookalikes[0]).flush()
    assert kv.stores() == dict.fromkeys(lookalikes[1:], 1)


# -- wildcards in prefixes and store names ------------------------------------------------

PREFIX_KEYS = [
    "a%b",
    "a%c",
    "a%",
    "axb",
    "ab",
    "a_b",
    "a_",
    "aXb",
    "a\\b",
    "a\\%",
    "a\\_",
    "é1",
    "e1",
    "e\u03011",
    "🔑a",
    "🔒a",
    "\ud800x",
    "\x00a",
    "",
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a%", ["a%", "a%b", "a%c"]),
        ("a_", ["a_", "a_b"]),
        ("a\\", ["a\\%", "a\\_", "a\\b"]),
        ("a\\%", ["a\\%"]),
        ("%", []),
        ("_", []),
        ("a", ["a%", "a%b", "a%c", "a\\%", "a\\_", "a\\b", "aXb", "a_", "a_b", "ab", "axb"]),
        ("ax", ["axb"]),
        ("aX", ["aXb"]),
        ("é", ["é1"]),
        ("e", ["e1", "e\u03011"]),
        ("🔑", ["🔑a"]),
        ("\ud800", ["\ud800x"]),
        ("\x00", ["\x00a"]),
        ("a%b", ["a%b"]),
        ("a%bc", []),
    ],
    ids=repr,
)
def test_prefix_listing_matches_exactly(kv: KeyValCache, prefix: str, expected: list[str]) -> None:
    # Values are ascii(key): JSON cannot store a lone surrogate's UTF-8.
    kv.store("prefixes").set_many({key: ascii(key) for key in PREFIX_KEYS})
    store = KeyVal("prefixes")
    assert sorted(store.keys(prefix)) == sorted(expected)
    assert sorted(store.items(prefix)) == sorted((key, ascii(key)) for key in expected)
    assert sorted(kv.store("prefixes").iter_keys(glob_escape(prefix) + "*")) == sorted(expected)


def test_empty_prefix_lists_everything(kv: KeyValCache) -> None:
    store = KeyVal("prefixes")
    for key in PREFIX_KEYS:
        store.set(key, ascii(key))
    assert sorted(store.keys("")) == sorted(PREFIX_KEYS)


@pytest.mark.parametrize(
    ("flushed", "others"),
    [
        ("a_c", ["abc", "aXc", "a_cd", "a_"]),
        ("a%", ["ab", "a", "a%b"]),
        ("%", ["", "x"]),
        ("_", ["x", ""]),
        ("a\\_c", ["a_c", "a\\xc"]),
        ("", ["x", " "]),
    ],
    ids=repr,
)
def test_flushing_a_store_with_wildcards_touches_no_other(
    kv: KeyValCache, flushed: str, others: list[str]
) -> None:
    for name in [flushed, *others]:
        KeyVal(name).set("k", name)
    KeyVal(flushed).flush()
    assert kv.stores() == dict.fromkeys(others, 1)
    kv.store(others[0]).clear()
    assert kv.stores() == dict.fromkeys(others[1:], 1)
