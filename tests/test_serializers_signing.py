"""Serializers, and the signatures that keep a writable table from running code.

Anyone who can write to the table (a SQL injection elsewhere, a shared
database, a restored backup) must not be able to make the application unpickle
a payload of their choosing: every pickled value is signed with SECRET_KEY and
bound to its store and key, and nothing unverifiable is ever deserialized.
A row that cannot be read is reported, never silently dropped or changed.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import json
import math
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from freezegun.api import FrozenDateTimeFactory

from keyval_backend import KeyVal, signing
from keyval_backend.cache import KeyValCache
from keyval_backend.codec import RowCodec
from keyval_backend.exceptions import TamperedValue, UnknownFormat, UnreadableValue
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry
from keyval_backend.serializers import load_serializer

SIGNATURE_SIZE = 32  # HMAC-SHA256
KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
JSON_OPTIONS = {"SERIALIZER": "json"}
PICKLE_OPTIONS = {"SERIALIZER": "pickle"}


class Point:
    """A picklable instance of a project class."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


class Vanishing:
    """A class that a test removes from the module, as a refactoring would."""


class FileCreator:
    """Unpickling this opens (so creates) a file: stands in for any code a
    crafted pickle can run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


class ReversedText:
    """A custom unsigned format: text stored backwards."""

    format_tag = "reversed.1"
    signed = False

    def dumps(self, value: Any) -> bytes:
        return str(value)[::-1].encode()

    def loads(self, data: bytes) -> Any:
        return data.decode()[::-1]


class PlainPickle:
    """A custom serializer that says nothing about its tag or signing."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


REVERSED_INSTANCE = ReversedText()


class NoLoads:
    def dumps(self, value: Any) -> bytes:
        return b""


class LongTag(ReversedText):
    format_tag = "x" * 65


class NonAsciiTag(ReversedText):
    format_tag = "sérialisé"


def snapshot(row: Entry) -> tuple[Any, ...]:
    """Every column of a row (id first), to prove a failed read did not touch it."""
    row.refresh_from_db()
    return tuple(
        bytes(value) if isinstance(value, memoryview) else value
        for value in (getattr(row, field.attname) for field in Entry._meta.concrete_fields)
    )


def content(cache: KeyValCache, key: str) -> tuple[Any, ...]:
    """What a row holds, whichever row it is: proves nothing was lost."""
    row = Entry.objects.get(
        store_hash=name_hash(encode_name(cache.store_name)),
        key_hash=name_hash(encode_name(cache.make_key(key))),
    )
    return (bytes(row.store), bytes(row.key), row.format, bytes(row.value), row.number, row.expires)


@pytest.fixture
def kv(db: None, use_caches: Callable[..., None]) -> KeyValCache:
    """``caches["keyval"]`` writing signed pickles, whatever the suite's
    serializer: every test of this module names the serializer it is about."""
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": PICKLE_OPTIONS})
    backend = caches["keyval"]
    assert isinstance(backend, KeyValCache)
    return backend


@pytest.fixture
def json_cache(make_cache: Callable[..., KeyValCache]) -> KeyValCache:
    return make_cache(OPTIONS=JSON_OPTIONS)


# -- pickle, the default ----------------------------------------------------------------

PICKLED_VALUES = {
    "str": "text",
    "bytes": b"\x00\xff",
    "float": 1.5,
    "bool": True,
    "none": None,
    "big-int": 2**64,
    "tuple": (1, "a"),
    "set": {1, 2},
    "nested": {"a": [1, {"b": (2, 3)}]},
    "datetime": datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "decimal": decimal.Decimal("1.10"),
    "instance": Point(1, 2),
}


@pytest.mark.parametrize("value", PICKLED_VALUES.values(), ids=PICKLED_VALUES.keys())
def test_pickle_is_the_default_and_signed(
    db: None, entry: Callable[..., Entry], value: Any
) -> None:
    cache = KeyValCache("", {})  # no SERIALIZER option at all
    cache.set("k", value)
    got = cache.get("k")
    assert got == value
    assert type(got) is type(value)
    row = entry(cache, "k")
    assert row.format == "pickle.1"
    stored = bytes(row.value)
    assert pickle.loads(stored[SIGNATURE_SIZE:]) == value
    assert row.number is None


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63)], ids=repr)
def test_64_bit_ints_are_stored_natively(
    kv: KeyValCache, entry: Callable[..., Entry], value: int
) -> None:
    kv.set("k", value)
    row = entry(kv, "k")
    assert (row.format, row.number, bytes(row.value)) == ("int", value, b"")
    assert kv.get("k") == value


# -- json -----------------------------------------------------------------------------------


JSON_VALUES = {
    "dict": {"a": [1, 2.5, None, True], "é": "ü"},
    "list": [1, "two", [3]],
    "str": "text with 🔑",
    "float": 1.25,
    "int-beyond-64-bits": 2**70,
    "bool": False,
    "none": None,
    "empty-dict": {},
}


@pytest.mark.parametrize("value", JSON_VALUES.values(), ids=JSON_VALUES.keys())
def test_json_round_trips(json_cache: KeyValCache, entry: Callable[..., Entry], value: Any) -> None:
    json_cache.set("k", value)
    assert json_cache.get("k") == value
    row = entry(json_cache, "k")
    assert row.format == "json.1"
    # Unsigned, plain JSON: readable by anything.
    assert json.loads(bytes(row.value)) == value


def test_json_reads_tuples_back_as_lists(json_cache: KeyValCache) -> None:
    json_cache.set("k", (1, (2, 3)))
    assert json_cache.get("k") == [1, [2, 3]]


def test_json_keeps_nan_and_infinity(json_cache: KeyValCache) -> None:
    json_cache.set("k", [math.inf, -math.inf])
    assert json_cache.get("k") == [math.inf, -math.inf]
    json_cache.set("n", math.nan)
    assert math.isnan(json_cache.get("n"))


def test_json_stores_ints_natively_too(json_cache: KeyValCache) -> None:
    json_cache.set("n", 1)
    assert json_cache.incr("n") == 2


@pytest.mark.parametrize(
    "value",
    [{1, 2}, b"bytes", object(), datetime.date(2030, 1, 1), Point(1, 2), decimal.Decimal(1)],
    ids=["set", "bytes", "object", "date", "instance", "decimal"],
)
def test_json_refuses_what_it_cannot_represent(
    json_cache: KeyValCache, django_assert_num_queries: Callable[..., Any], value: Any
) -> None:
    json_cache.set("k", "old")
    with django_assert_num_queries(0):  # refused before any SQL
        with pytest.raises(TypeError):
            json_cache.set("k", value)
        with pytest.raises(TypeError):
            json_cache.upsert("k", value)
        with pytest.raises(TypeError):
            json_cache.set_many({"k": "new", "other": value})
        with pytest.raises(TypeError):
            json_cache.add("fresh", value)
    assert json_cache.get("k") == "old"
    assert json_cache.get_many(["other", "fresh"]) == {}
    assert Entry.objects.count() == 1


def test_json_keeps_text_with_a_lone_surrogate(
    json_cache: KeyValCache, entry: Callable[..., Entry]
) -> None:
    # Valid in a Python str (and as a key), but not in UTF-8: the JSON
    # serializer writes it as a \u escape, which reads back as it was.
    value = {"text": "x\udfff", "plain": "café"}
    json_cache.set("k", value)
    assert json_cache.get("k") == value
    stored = bytes(entry(json_cache, "k").value)
    assert b"\\udfff" in stored
    assert json.loads(stored) == value


def test_a_json_cache_never_unpickles(
    kv: KeyValCache, json_cache: KeyValCache, entry: Callable[..., Entry]
) -> None:
    kv.set("k", {"pickled": True})
    kv.set("n", 5)
    row = content(kv, "k")
    with pytest.raises(UnknownFormat):
        json_cache.get("k")
    with pytest.raises(UnknownFormat):
        json_cache.get_many(["k", "n"])
    with pytest.raises(UnknownFormat):
        list(json_cache.iter_items())
    with pytest.raises(UnknownFormat):
        json_cache.pop("k")
    with pytest.raises(UnknownFormat):
        json_cache.incr("k")
    assert json_cache.has_key("k")
    assert json_cache.get("n") == 5  # a native int is no pickle
    assert content(kv, "k") == row


def test_a_pickle_cache_reads_json_rows(kv: KeyValCache, json_cache: KeyValCache) -> None:
    json_cache.set("k", {"a": [1]})
    assert kv.get("k") == {"a": [1]}


def test_changing_serializer_keeps_old_rows_readable(
    db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": JSON_OPTIONS})
    KeyVal("s").set("old", ["json"])
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": PICKLE_OPTIONS})
    KeyVal("s").set("new", ("pickle",))
    assert dict(KeyVal("s").items()) == {"old": ["json"], "new": ("pickle",)}


# -- custom serializers ------------------------------------------------------------------


def test_a_dotted_path_serializer(
    make_cache: Callable[..., KeyValCache], entry: Callable[..., Entry]
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": f"{__name__}.ReversedText"})
    cache.set("k", "hello")
    assert cache.get("k") == "hello"
    row = entry(cache, "k")
    assert (row.format, bytes(row.value)) == ("reversed.1", b"olleh")


def test_a_dotted_path_to_an_instance(make_cache: Callable[..., KeyValCache]) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": f"{__name__}.REVERSED_INSTANCE"})
    cache.set("k", "hello")
    assert cache.get("k") == "hello"


def test_a_custom_serializer_is_signed_and_tagged_unless_it_says_otherwise(
    make_cache: Callable[..., KeyValCache], entry: Callable[..., Entry]
) -> None:
    path = f"{__name__}.PlainPickle"
    cache = make_cache(OPTIONS={"SERIALIZER": path})
    cache.set("k", Point(1, 2))
    assert cache.get("k") == Point(1, 2)
    row = entry(cache, "k")
    assert row.format == f"custom:{path}"
    assert pickle.loads(bytes(row.value)[SIGNATURE_SIZE:]) == Point(1, 2)
    Entry.objects.filter(pk=row.pk).update(value=bytes(row.value)[SIGNATURE_SIZE:])
    with pytest.raises(TamperedValue):
        cache.get("k")


def test_caches_do_not_read_other_custom_formats(
    make_cache: Callable[..., KeyValCache],
) -> None:
    custom = make_cache(OPTIONS={"SERIALIZER": f"{__name__}.ReversedText"})
    pickling = make_cache(OPTIONS=PICKLE_OPTIONS)
    custom.set("c", "text")
    pickling.set("p", "text")
    with pytest.raises(UnknownFormat):
        pickling.get("c")
    with pytest.raises(UnknownFormat):
        custom.get("p")


@pytest.mark.parametrize(
    "serializer",
    [
        "yaml",
        "",
        "no_such_module.Serializer",
        f"{__name__}.NoSuchClass",
        f"{__name__}.NoLoads",
        f"{__name__}.LongTag",
        f"{__name__}.NonAsciiTag",
        42,
        None,
        ReversedText,
    ],
    ids=repr,
)
def test_a_bad_serializer_is_improperly_configured(
    make_cache: Callable[..., KeyValCache], serializer: Any
) -> None:
    with pytest.raises(ImproperlyConfigured, match="SERIALIZER"):
        load_serializer(serializer)
    # The cache is built (so that ``manage.py check`` can report keyval.E003)
    # but refuses to read or write.
    cache = make_cache(OPTIONS={"SERIALIZER": serializer})
    with pytest.raises(ImproperlyConfigured, match="SERIALIZER"):
        cache.set("k", "value")
    with pytest.raises(ImproperlyConfigured, match="SERIALIZER"):
        cache.get("k")
    assert Entry.objects.count() == 0


# -- tampering ------------------------------------------------------------------------------


def flip_first(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x80])


TAMPERINGS: dict[str, tuple[dict[str, Callable[[bytes], Any]], type[Exception]]] = {
    "flipped signature byte": ({"value": flip_first}, TamperedValue),
    "flipped payload byte": ({"value": flip_last}, TamperedValue),
    "truncated to 10 bytes": ({"value": lambda v: v[:10]}, TamperedValue),
    "last byte cut": ({"value": lambda v: v[:-1]}, TamperedValue),
    "signature only": ({"value": lambda v: v[:SIGNATURE_SIZE]}, TamperedValue),
    "empty": ({"value": lambda v: b""}, TamperedValue),
    "byte appended": ({"value": lambda v: v + b"."}, TamperedValue),
    "signature stripped": ({"value": lambda v: v[SIGNATURE_SIZE:]}, TamperedValue),
    "unknown format tag": ({"format": lambda v: "yaml.1"}, UnknownFormat),
    "other pickle tag": ({"format": lambda v: "pickle.2"}, UnknownFormat),
}

READS: dict[str, Callable[[KeyValCache], Any]] = {
    "get": lambda c: c.get("k"),
    "get_many": lambda c: c.get_many(["k", "other"]),
    "get_or_set": lambda c: c.get_or_set("k", "default"),
    "pop": lambda c: c.pop("k"),
    "incr": lambda c: c.incr("k"),
    "iter_items": lambda c: list(c.iter_items()),
    "facade get": lambda c: KeyVal("default").get("k"),
    "facade pop": lambda c: KeyVal("default").pop("k"),
    "facade pop_default": lambda c: KeyVal("default").pop_default("k"),
    "facade items": lambda c: list(KeyVal("default").items()),
    "facade values": lambda c: list(KeyVal("default").values()),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
@pytest.mark.parametrize(("change", "error"), TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_row_is_refused_and_kept(
    kv: KeyValCache,
    entry: Callable[..., Entry],
    change: dict[str, Callable[[bytes], Any]],
    error: type[Exception],
    read: Callable[[KeyValCache], Any],
) -> None:
    kv.set("k", {"secret": [1, 2, 3]}, timeout=1000)
    kv.set("other", "fine")
    row = entry(kv, "k")
    value = bytes(row.value)
    Entry.objects.filter(pk=row.pk).update(
        **{column: mutate(value) for column, mutate in change.items()}
    )
    before = content(kv, "k")
    with pytest.raises(error):
        read(kv)
    assert content(kv, "k") == before
    assert kv.has_key("k")
    assert kv.get("other") == "fine"
    # The way out of an unreadable row is to overwrite or delete it.
    kv.set("k", "replaced")
    assert kv.get("k") == "replaced"


@pytest.mark.parametrize(
    "read",
    [READS["get"], READS["get_many"], READS["iter_items"], READS["pop"], READS["facade pop"]],
    ids=["get", "get_many", "iter_items", "pop", "facade pop"],
)
def test_a_failed_read_leaves_the_row_untouched(
    kv: KeyValCache,
    entry: Callable[..., Entry],
    frozen: FrozenDateTimeFactory,
    read: Callable[[KeyValCache], Any],
) -> None:
    # Not only its content: the same row, same id, timestamps and write count,
    # so that it can be inspected as it was found.
    kv.set("k", "value", timeout=1000)
    kv.set("k", "value again", timeout=1000)
    row = entry(kv, "k")
    Entry.objects.filter(pk=row.pk).update(value=flip_last(bytes(row.value)))
    before = snapshot(row)
    frozen.tick(10)
    with pytest.raises(TamperedValue):
        read(kv)
    assert snapshot(entry(kv, "k")) == before


def test_a_pickle_that_would_run_code_never_runs(
    kv: KeyValCache, json_cache: KeyValCache, entry: Callable[..., Entry], tmp_path: Path
) -> None:
    # Control: this payload does create its file when unpickled.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(FileCreator(control))).close()
    assert control.exists()

    target = tmp_path / "exploited"
    payload = pickle.dumps(FileCreator(target))
    kv.set("k", "innocent")
    row = entry(kv, "k")
    identity = (row.store_hash + row.key_hash).encode()
    with override_settings(SECRET_KEY="a key the attacker knows"):
        signed_elsewhere = signing.sign(identity, "pickle.1", payload)
    forged = [
        b"\x00" * SIGNATURE_SIZE + payload,
        payload,
        bytes(row.value)[:SIGNATURE_SIZE] + payload,
        signed_elsewhere,
    ]
    for value in forged:
        Entry.objects.filter(pk=row.pk).update(value=value)
        for read in READS.values():
            with pytest.raises(TamperedValue):
                read(kv)
        with pytest.raises(UnknownFormat):
            json_cache.get("k")
    assert not target.exists()


def test_a_value_signed_with_another_secret_key_is_refused(kv: KeyValCache) -> None:
    with override_settings(SECRET_KEY="an attacker's or a previous key"):
        kv.set("k", "signed elsewhere")
        assert kv.get("k") == "signed elsewhere"
    before = content(kv, "k")
    with pytest.raises(TamperedValue):
        kv.get("k")
    with pytest.raises(TamperedValue):
        kv.pop("k")
    assert content(kv, "k") == before


def test_secret_key_fallbacks_keep_old_values_readable(kv: KeyValCache, settings: Any) -> None:
    settings.SECRET_KEY = "old secret"
    kv.set("old", {"written": "before rotation"})
    settings.SECRET_KEY = "new secret"
    settings.SECRET_KEY_FALLBACKS = ["older secret", "old secret"]
    assert kv.get("old") == {"written": "before rotation"}
    assert KeyVal("default").get("old") == {"written": "before rotation"}
    kv.set("new", "after rotation")
    settings.SECRET_KEY_FALLBACKS = []
    assert kv.get("new") == "after rotation"
    with pytest.raises(TamperedValue):
        kv.get("old")


def copy_value(source: Entry, target: Entry) -> None:
    Entry.objects.filter(pk=target.pk).update(
        format=source.format, value=source.value, number=source.number
    )


@pytest.mark.parametrize(
    "target",
    [("default", "other-key", None), ("other-store", "k", None), ("default", "k", 2)],
    ids=["other key", "other store", "other version"],
)
def test_a_signed_value_copied_to_another_row_is_refused(
    kv: KeyValCache, entry: Callable[..., Entry], target: tuple[str, str, int | None]
) -> None:
    store, key, version = target
    kv.set("k", "only valid here")
    destination = kv.store(store)
    destination.set(key, "original", version=version)
    copy_value(entry(kv, "k"), entry(destination, key, version))
    with pytest.raises(TamperedValue):
        destination.get(key, version=version)
    assert kv.get("k") == "only valid here"


def test_a_signed_row_moved_to_another_store_is_refused(
    kv: KeyValCache, entry: Callable[..., Entry]
) -> None:
    kv.set("k", "only valid in default")
    Entry.objects.filter(pk=entry(kv, "k").pk).update(
        store=b"other", store_hash=name_hash(b"other")
    )
    with pytest.raises(TamperedValue):
        kv.store("other").get("k")


# -- rows that cannot be deserialized --------------------------------------------------------


@pytest.mark.parametrize(
    "corrupt",
    [
        {"value": b'{"a": '},
        {"value": b"\xff\xfe"},
        {"value": b""},
        {"format": "json.1", "value": SIGNATURE_SIZE * b"\x00" + pickle.dumps("x")},
    ],
    ids=["truncated json", "not utf-8", "empty", "pickle bytes tagged json"],
)
def test_a_corrupt_json_row_is_an_unreadable_value_and_kept(
    kv: KeyValCache, json_cache: KeyValCache, corrupt: dict[str, Any]
) -> None:
    # JSON rows are unsigned, so a bad one is not "tampered", but it is still
    # an UnreadableValue: one exception to catch, and pop puts the row back.
    json_cache.set("k", {"a": 1})
    Entry.objects.filter(key=b":1:k").update(**corrupt)
    before = content(json_cache, "k")
    reads: dict[str, Callable[[], Any]] = {
        "json get": lambda: json_cache.get("k"),
        "json get_many": lambda: json_cache.get_many(["k"]),
        "json iter_items": lambda: list(json_cache.iter_items()),
        "pickle get": lambda: kv.get("k"),
        "json pop": lambda: json_cache.pop("k"),
        "facade pop": lambda: KeyVal("default").pop("k"),
    }
    wrong: dict[str, str] = {}
    for name, read in reads.items():
        try:
            read()
        except UnreadableValue:
            continue
        except Exception as exc:  # any other exception is the failure reported below
            wrong[name] = type(exc).__name__
        else:
            wrong[name] = "no error"
    assert wrong == {}
    assert content(json_cache, "k") == before


def test_a_pickle_of_a_removed_class_is_an_unreadable_value(
    kv: KeyValCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    kv.set("k", Vanishing())
    monkeypatch.delattr(sys.modules[__name__], "Vanishing")
    with pytest.raises(UnreadableValue):
        kv.get("k")


@pytest.mark.parametrize(
    "pop",
    [lambda c: c.pop("k"), lambda c: KeyVal("default").pop("k")],
    ids=["cache pop", "facade pop"],
)
def test_popping_a_row_that_cannot_be_loaded_keeps_it(
    kv: KeyValCache,
    entry: Callable[..., Entry],
    monkeypatch: pytest.MonkeyPatch,
    frozen: FrozenDateTimeFactory,
    pop: Callable[[KeyValCache], Any],
) -> None:
    # Valid signature, but its class is gone (renamed in a refactoring): the
    # row must survive the failed pop, whatever the error.
    kv.set("k", Vanishing())
    before = snapshot(entry(kv, "k"))
    monkeypatch.delattr(sys.modules[__name__], "Vanishing")
    frozen.tick(10)
    with contextlib.suppress(Exception):
        pop(kv)
    assert Entry.objects.filter(pk=before[0]).exists()
    assert snapshot(entry(kv, "k")) == before


def test_a_value_written_while_a_pop_fails_wins(
    kv: KeyValCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failed pop puts its row back only if the key is still free.
    kv.set("k", Vanishing())
    monkeypatch.delattr(sys.modules[__name__], "Vanishing")
    decode = RowCodec.decode
    meanwhile: list[str] = []

    def decode_while_another_writes(codec: RowCodec, identity: bytes, *stored: Any) -> Any:
        if not meanwhile:
            meanwhile.append("written meanwhile")
            kv.set("k", meanwhile[0])
        return decode(codec, identity, *stored)

    monkeypatch.setattr(RowCodec, "decode", decode_while_another_writes)
    with pytest.raises(UnreadableValue):
        kv.pop("k")
    assert kv.get("k") == "written meanwhile"
    assert Entry.objects.count() == 1


def test_presence_and_expiry_of_an_unreadable_row_are_still_known(
    kv: KeyValCache, entry: Callable[..., Entry], frozen: FrozenDateTimeFactory
) -> None:
    # has_key, ttl and touch never read the value.
    kv.set("k", "v", timeout=100)
    Entry.objects.filter(pk=entry(kv, "k").pk).update(format="nope")
    assert kv.has_key("k")
    assert kv.ttl("k") == 100
    assert kv.touch("k", 50) is True
    assert kv.ttl("k") == 50
    assert KeyVal("default").exists("k")


def test_unreadable_rows_can_still_be_deleted(kv: KeyValCache, entry: Callable[..., Entry]) -> None:
    kv.set("k", "v")
    Entry.objects.filter(pk=entry(kv, "k").pk).update(format="nope")
    assert KeyVal("default").exists("k")
    assert KeyVal("default").delete("k") is True
    assert Entry.objects.count() == 0
