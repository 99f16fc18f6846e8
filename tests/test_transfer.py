"""The JSON Lines dump format (keyval_backend.transfer), through ``keyval -c
dump`` / ``-c load`` and directly."""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError

from keyval_backend import KeyVal, transfer
from keyval_backend.cache import KeyValCache
from keyval_backend.codec import RowCodec
from keyval_backend.exceptions import TamperedValue, UnknownFormat
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry
from keyval_backend.serializers import PickleSerializer

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"

ODD_STORES = ["", "with space", "😀", "nul\x00", "lone\ud800"]
ODD_KEYS = [
    "", " ", "a\x00b", "\n", "tab\t", "café", "cafe", "CAFE", "😀", "x\udfff", "%_",
    "'\"\\;--", "k" * 10_000,
]  # fmt: skip
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64, 1.5, -0.0, 1e308, float("inf"),
    float("nan"), "", "text", "\x00\n\t", "café 😀", "\ud800", "\ud83d\ude00", b"\x00\xff", (1, 2),
    [1, (2, 3)], [True, 1, 1.0], {"a": 1}, {1: "int key"}, {"nested": {"list": [None, "x"]}},
    {1}, datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC), decimal.Decimal("1.10"),
    "y" * 100_000,
]  # fmt: skip


def contents() -> dict[tuple[str, str], tuple[str, str, float | None]]:
    """Every row as (store, made key) -> (type, repr of the value, expires),
    decoded with verification: what a round trip must preserve."""
    codec = RowCodec(PickleSerializer())
    found = {}
    for row in Entry.objects.all():
        value = codec.decode(
            (row.store_hash + row.key_hash).encode(), row.format, bytes(row.value), row.number
        )
        found[(row.store_name, row.key_name)] = (type(value).__name__, repr(value), row.expires)
    return found


def dump(*args: str) -> str:
    out = io.StringIO()
    call_command("keyval", "-c", "dump", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def load(text: str, *args: str) -> str:
    err = io.StringIO()
    call_command("keyval", "-c", "load", *args, stdin=io.StringIO(text), stderr=err)
    return err.getvalue()


def load_fails(text: str, *args: str) -> str:
    with pytest.raises(CommandError) as failure:
        load(text, *args)
    assert failure.value.returncode == 3
    return str(failure.value)


@pytest.fixture
def odd_store(kv: KeyValCache, use_caches: Callable[..., None]) -> None:
    """Odd keys and values in odd stores, some expiring, one of version 2, all
    pickled (whatever the suite's serializer), and JSON-serialized rows (one
    holding NaN, which JSON cannot carry)."""
    use_caches(
        keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "pickle"}},
        json={"BACKEND": KEYVAL_BACKEND, "LOCATION": "json", "OPTIONS": {"SERIALIZER": "json"}},
    )
    backend = caches["keyval"]
    for number, store in enumerate(ODD_STORES):
        view = backend.facade_view(store)
        for index, key in enumerate(ODD_KEYS):
            view.set(key, ODD_VALUES[(index + number) % len(ODD_VALUES)])
        for index, value in enumerate(ODD_VALUES):
            view.set(f"value {index}", value, timeout=3600 if index % 3 else None)
    backend.set("versioned", "two", version=2)
    caches["json"].set_many({"nan": float("nan"), "list": [1, "a"], "n": 7})


# -- the format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"), (True, "true"), (0, "0"), (2**70, str(2**70)), (-0.0, "-0.0"),
        (1.0, "1.0"), ("é\ud800", '"\\u00e9\\ud800"'), ("é", '"é"'), ([1, [None]], "[1,[null]]"),
        ({"k": {"l": []}}, '{"k":{"l":[]}}'),
        ((1,), None), ({1: 2}, None), (float("nan"), None), (float("inf"), None), (b"", None),
        ([(1,)], None), ({"k": {1}}, None), (decimal.Decimal(1), None),
        # Escaped, a pair of surrogates reads back as the one character they encode.
        ("\ud83d\ude00", None), ({"\ud83d\ude00": 1}, None),
        (datetime.date(2030, 1, 1), None),
    ],
)  # fmt: skip
def test_exact_json(value: Any, text: str | None) -> None:
    assert transfer.exact_json(value) == text
    if text is not None:
        assert repr(json.loads(text)) == repr(value)


def test_exact_json_subclasses_and_recursion() -> None:
    class Text(str):
        pass

    assert transfer.exact_json(Text("a")) is None
    assert transfer.exact_json(datetime.timedelta.max.days) == "999999999"
    looped: list[Any] = []
    looped.append(looped)
    assert transfer.exact_json(looped) is None


def _row(store: str, key: str, value: Any, serializer: Any = None) -> tuple[Any, ...]:
    store_b, key_b = encode_name(store), encode_name(key)
    identity = (name_hash(store_b) + name_hash(key_b)).encode()
    fmt, data, number = RowCodec(serializer or PickleSerializer()).encode(identity, value)
    return store_b, key_b, fmt, data, number


def test_entry_line_formats() -> None:
    store, key, fmt, data, number = _row("s", ":1:k", 5)
    assert fmt == "int"
    assert transfer.entry_line(store, key, fmt, data, number, None) == (
        '{"store":"s","key":":1:k","expires":null,"value":5}'
    )
    store, key, fmt, data, number = _row("s", ":1:k", {"a": "b"})
    assert fmt == "pickle.1"
    assert transfer.entry_line(store, key, fmt, memoryview(data), number, 12.5) == (
        '{"store":"s","key":":1:k","expires":12.5,"value":{"a":"b"}}'
    )
    store, key, fmt, data, number = _row("s", ":1:k", ("a", "b"))
    line = json.loads(transfer.entry_line(store, key, fmt, data, number, None))
    assert set(line) == {"store", "key", "expires", "pickle", "signature"}
    assert bytes.fromhex(line["signature"]) + base64.b64decode(line["pickle"]) == data
    from keyval_backend.serializers import JSONSerializer

    store, key, fmt, data, number = _row("s", ":1:k", [1, "x"], JSONSerializer())
    assert fmt == "json.1"
    assert transfer.entry_line(store, key, fmt, data, number, None).endswith('"value":[1,"x"]}')


def test_entry_line_refuses_unreadable_rows() -> None:
    store, key, fmt, data, number = _row("s", ":1:k", ("a",))
    with pytest.raises(TamperedValue):
        transfer.entry_line(store, key, fmt, data[:-1] + b"!", number, None)
    # Signed for another row: moved rows are refused too.
    with pytest.raises(TamperedValue):
        transfer.entry_line(store, b":1:other", fmt, data, number, None)
    with pytest.raises(UnknownFormat):
        transfer.entry_line(store, key, "msgpack.1", data, number, None)


# -- round trips -------------------------------------------------------------------------------


def test_round_trip_of_odd_stores(odd_store: None) -> None:
    before = contents()
    assert len(before) == len(ODD_STORES) * (len(ODD_KEYS) + len(ODD_VALUES)) + 4
    text = dump()
    lines = text.splitlines()
    assert len(lines) == len(before)
    assert all(line.isascii() or "\ud800" not in line for line in lines)
    caches["keyval"].flush_all()
    assert load(text) == f"Loaded {len(before)} entries: {len(before)} new.\n"
    after = contents()
    assert after == before
    assert sorted(dump().splitlines()) == sorted(lines)


def test_round_trip_into_an_empty_database(odd_store: None, tmp_path: Path) -> None:
    """Dump from this run's database, load into a new stand-alone SQLite file
    (signing with the same SECRET_KEY), dump that: the same lines."""
    text = dump()
    (tmp_path / "dump.jsonl").write_text(text, encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KEYVAL_", "DJANGO_"))},
        "KEYVAL_SECRET_KEY": settings.SECRET_KEY,
    }
    command = [sys.executable, "-m", "keyval_backend", "--db", str(tmp_path / "new.sqlite3")]
    loaded = subprocess.run(
        [*command, "-c", "load", "--input", "dump.jsonl"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    dumped = subprocess.run(
        [*command, "-c", "dump"], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert dumped.returncode == 0, dumped.stderr
    assert sorted(dumped.stdout.decode("utf-8").splitlines()) == sorted(text.splitlines())


def test_dump_of_one_store_and_of_live_entries(kv: KeyValCache) -> None:
    kv.store("a").set("k", 1)
    kv.store("a").set("gone", 1, timeout=10)
    kv.store("b").set("k", 2)
    Entry.objects.filter(key=b":1:gone").update(expires=1.0)
    assert dump("-n", "a") == '{"store":"a","key":":1:k","expires":null,"value":1}\n'
    assert len(dump().splitlines()) == 2


def test_dump_to_a_file(kv: KeyValCache, tmp_path: Path) -> None:
    kv.set_many({"a": 1, "b": (2,)})
    target = tmp_path / "out.jsonl"
    target.write_text("old")
    call_command("keyval", "-c", "dump", "--output", str(target), stderr=io.StringIO())
    assert len(target.read_text().splitlines()) == 2
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]


@pytest.mark.parametrize(
    ("serializer", "reason"),
    [("pickle", "signature mismatch"), ("json", "stored 'json.1' value cannot be loaded")],
)
def test_dump_stops_at_an_unreadable_entry(
    db: None, use_caches: Callable[..., None], tmp_path: Path, serializer: str, reason: str
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": serializer}})
    kv = caches["keyval"]
    kv.store("s").set("bad", ["list"])
    kv.store("s").set("good", "fine")
    Entry.objects.filter(key=b":1:bad").update(value=b"\x00" * 40)
    target = tmp_path / "out.jsonl"
    with pytest.raises(CommandError) as failure:
        call_command("keyval", "-c", "dump", "--output", str(target), stderr=io.StringIO())
    assert failure.value.returncode == 3
    assert str(failure.value).startswith(f"unreadable value: store 's', key ':1:bad': {reason}")
    assert os.listdir(tmp_path) == []  # no half-written dump
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"^1 unreadable entry left out$"):
        call_command(
            "keyval", "-c", "dump", "--output", str(target), "--continue-on-error", stderr=err
        )
    assert err.getvalue().startswith(f"skipped store 's', key ':1:bad': {reason}")
    assert target.read_text() == '{"store":"s","key":":1:good","expires":null,"value":"fine"}\n'


def test_json_serializer_cache(kv: KeyValCache, use_caches: Callable[..., None]) -> None:
    use_caches(json={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "json"}})
    text = '{"store":"default","key":":1:k","expires":null,"value":{"a":[1]}}\n'
    load(text, "--cache", "json")
    assert Entry.objects.get().format == "json.1"
    assert caches["json"].get("k") == {"a": [1]}
    pickled = json.loads(dump_line(("not", "json")))
    message = load_fails(json.dumps(pickled) + "\n", "--cache", "json")
    assert "a pickled value cannot go into a cache whose serializer writes 'json.1'" in message


def dump_line(value: Any, store: str = "default", key: str = ":1:k") -> str:
    return transfer.entry_line(*_row(store, key, value), None)


# -- load ----------------------------------------------------------------------------------------


def test_load_keeps_or_replaces(kv: KeyValCache) -> None:
    kv.set("live", "old")
    kv.set("expired", "old", timeout=10)
    Entry.objects.filter(key=b":1:expired").update(expires=1.0)
    text = "".join(
        dump_line(value, key=key) + "\n"
        for key, value in [(":1:live", "new"), (":1:expired", "new"), (":1:fresh", ["new"])]
    )
    assert load(text) == (
        "Loaded 2 entries: 2 new, 1 kept (already there; --replace overwrites).\n"
    )
    assert kv.get_many(["live", "expired", "fresh"]) == {
        "live": "old", "expired": "new", "fresh": ["new"]
    }  # fmt: skip
    assert load(text, "--replace") == "Loaded 3 entries: 0 new, 3 replaced.\n"
    assert kv.get("live") == "new"


def test_load_skips_expired_entries_and_other_stores(kv: KeyValCache) -> None:
    text = (
        '{"store":"a","key":":1:old","expires":1.0,"value":1}\n'
        '{"store":"a","key":":1:new","expires":4102444800,"value":1}\n'
        "\n"
        '{"store":"b","key":":1:k","expires":null,"value":1}\n'
    )
    assert load(text, "-n", "a") == "Loaded 1 entry: 1 new, 1 expired, 1 of other stores.\n"
    assert kv.store("a").ttl("new") > 0
    assert list(Entry.objects.values_list("expires", flat=True)) == [4102444800.0]


def test_the_last_of_two_lines_for_a_key_wins(kv: KeyValCache) -> None:
    text = "".join(dump_line(n) + "\n" for n in range(3))
    assert load(text) == "Loaded 1 entry: 1 new.\n"
    assert kv.get("k") == 2


def test_a_name_json_cannot_hold_stops_the_dump(kv: KeyValCache) -> None:
    KeyVal("s").set("pair \ud83d\ude00", 1)
    with pytest.raises(CommandError) as failure:
        dump()
    assert failure.value.returncode == 3
    assert str(failure.value) == (
        "unreadable value: store 's', key ':1:pair \\ud83d\\ude00': the store or key name holds "
        "a surrogate pair as two code points, which JSON cannot represent"
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{", "invalid JSON: Expecting property name enclosed in double quotes"),
        ('{"store":"s","key":"k","expires":null,"value":1} {}', "invalid JSON: extra data"),
        ("[1]", "expected a JSON object, got list"),
        ('{"store":"s","key":1,"expires":null,"value":1}', '"store" and "key" must be strings'),
        ('{"store":"s","key":"k","value":1}', '"expires" must be a number or null'),
        ('{"store":"s","key":"k","expires":"soon","value":1}', '"expires" must be a number'),
        ('{"store":"s","key":"k","expires":null,"value":NaN}', "invalid JSON: NaN is not valid"),
        ('{"store":"s","key":"k","expires":null}', 'expected exactly one of "value" and "pickle"'),
        ('{"store":"s","key":"k","expires":null,"pickle":"!!","signature":"00"}', "malformed"),
        ('{"store":"s","key":"k","expires":null,"pickle":"gAUu","signature":"zz"}', "malformed"),
        ('{"store":"s","key":"k","expires":null,"pickle":"gAUu","signature":1}', '"pickle" and'),
        (
            '{"store":"s","key":"k","expires":null,"pickle":"gAWVAAAAAAAAAAAu",'
            f'"signature":"{"0" * 64}"}}',
            "refused: signature mismatch",
        ),
    ],
)
def test_a_bad_line_loads_nothing(kv: KeyValCache, line: str, reason: str) -> None:
    good = dump_line("v", key=":1:good")
    message = load_fails(f"{good}\n{good}\n{line}\n")
    assert message.startswith(f"line 3: {reason}")
    assert message.endswith("; nothing was loaded")
    assert Entry.objects.count() == 0


def test_a_pickle_signed_for_another_row_is_refused(kv: KeyValCache) -> None:
    moved = json.loads(dump_line(("x",), key=":1:a"))
    moved["key"] = ":1:b"
    assert load_fails(json.dumps(moved) + "\n").startswith("line 1: refused: signature mismatch")


def test_invalid_utf8_is_a_bad_line(kv: KeyValCache, tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    path.write_bytes(dump_line(1).encode() + b"\n" + b'{"store":"\xff"}\n')
    with pytest.raises(CommandError, match=r"^line 2: not UTF-8 \(invalid start byte at byte 10\)"):
        call_command("keyval", "-c", "load", "--input", str(path), stderr=io.StringIO())
    assert Entry.objects.count() == 0


def test_a_failed_load_of_many_batches_writes_nothing(kv: KeyValCache) -> None:
    lines = [dump_line(n, key=f":1:k{n}") for n in range(2500)]
    message = load_fails("\n".join([*lines, "oops"]) + "\n")
    assert message.startswith("line 2501: invalid JSON")
    assert Entry.objects.count() == 0


def test_continue_on_error(kv: KeyValCache) -> None:
    text = f"{dump_line(1, key=':1:a')}\nnot json\n[]\n{dump_line(2, key=':1:b')}\n"
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"^2 bad lines skipped$") as failure:
        call_command(
            "keyval", "-c", "load", "--continue-on-error", stdin=io.StringIO(text), stderr=err
        )
    assert failure.value.returncode == 3
    assert err.getvalue() == (
        "skipped line 2: invalid JSON: Expecting value\n"
        "skipped line 3: expected a JSON object, got list\n"
        "Loaded 2 entries: 2 new.\n"
    )
    assert kv.get_many(["a", "b"]) == {"a": 1, "b": 2}


def test_load_from_a_file_with_a_progress_bar(kv: KeyValCache, tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    path.write_text("".join(dump_line(n, key=f":1:{n}") + "\n" for n in range(5)))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    call_command("keyval", "-c", "load", "--input", str(path), stderr=err)
    # The bar counts the file's lines, then is erased before the message.
    assert err.getvalue().startswith("\rload: ")
    assert "/5 " in err.getvalue().split("\r")[1]
    assert err.getvalue().endswith("\rLoaded 5 entries: 5 new.\n")


# -- size ---------------------------------------------------------------------------------------

ENTRIES = 100_000
# Far below what holding the entries would take (the file alone is ~6 MB, and
# as Python objects the entries take several times that), far above what one
# page or batch of 1,000 entries takes.
PEAK_LIMIT = 4 * 2**20


def test_large_load_and_dump_in_constant_memory(kv: KeyValCache, tmp_path: Path) -> None:
    """Load 100,000 entries from a file and dump them back, measuring the peak
    of Python's allocations; most values are native integers so that the run
    stays short, every tenth a dict (a signed pickle in the table)."""
    source, copy = tmp_path / "source.jsonl", tmp_path / "copy.jsonl"
    with source.open("w") as file:
        for n in range(ENTRIES):
            value = f'{{"n":{n},"text":"{"x" * 40}"}}' if n % 10 == 0 else str(n)
            file.write(f'{{"store":"big","key":":1:key {n:06d}","expires":null,"value":{value}}}\n')
    tracemalloc.start()
    try:
        call_command("keyval", "-c", "load", "--input", str(source), stderr=io.StringIO())
        load_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        call_command("keyval", "-c", "dump", "--output", str(copy), stderr=io.StringIO())
        dump_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert source.stat().st_size > 5_000_000
    assert max(load_peak, dump_peak) < PEAK_LIMIT, (load_peak, dump_peak)
    assert kv.store("big").count() == ENTRIES
    assert KeyVal("big").get("key 099990") == {"n": 99990, "text": "x" * 40}
    with source.open() as before, copy.open() as after:
        assert sorted(before) == sorted(after)
