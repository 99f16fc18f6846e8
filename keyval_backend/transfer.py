"""The JSON Lines dump format: one entry a line, streamed both ways.

A line holds the exact stored names and either the value as JSON, when JSON
gives back the same value (same types, equal), or the pickle with its
signature::

    {"store":"s","key":":1:k","expires":null,"value":{"a":[1,2]}}
    {"store":"s","key":":1:t","expires":1767225600.0,"pickle":"gAWV...","signature":"9f3a..."}

``key`` is the key as the cache's key function made it (``KEY_PREFIX`` and
``VERSION`` included), so a load restores exactly the rows that were dumped.
The signature is the row's MAC (:mod:`keyval_backend.signing`): a load
verifies it before writing, so a dump edited by anyone without ``SECRET_KEY``
is refused instead of being unpickled later.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import pickle
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from . import db, signing
from .codec import RowCodec
from .exceptions import UnreadableValue
from .identity import decode_name, encode_name, name_hash
from .serializers import BaseSerializer, PickleSerializer
from .sql import Dialect, dialect_for
from .sql.base import ROW_COLUMNS, Row
from .sql.mysql import MySQLDialect

TABLE = "keyval_backend_entry"
PICKLE_FORMAT = PickleSerializer.format_tag
# Rows read per query while dumping, and rows written per statement while loading.
PAGE_SIZE = 1000

# The codec of a default cache: reads ``int``, ``json.1`` and ``pickle.1``.
DEFAULT_CODEC = RowCodec(PickleSerializer())


# -- JSON that reads back as the same value ---------------------------------------


# Two code points JSON cannot keep apart: escaped, a decoder joins them into one.
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _exact(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return value.isascii() or _SURROGATE_PAIR.search(value) is None
    if value is None or kind is bool or kind is int:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_exact(item) for item in value)
    if kind is dict:
        return all(type(k) is str and _exact(k) and _exact(v) for k, v in value.items())
    return False


def is_exact(value: Any) -> bool:
    """Whether ``json.loads(json.dumps(value))`` has the same types and value:
    no tuples, no non-str dict keys, no int/float/str subclasses, no NaN, no
    string holding a surrogate pair as two code points."""
    try:
        return _exact(value)
    except RecursionError:  # nested deeper than JSON can go, or self-referencing
        return False


def reject_constant(name: str) -> Any:
    """``parse_constant`` for json.loads: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


# Made once: json.dumps and json.loads with options build a new encoder or
# decoder on every call, which costs as much as a short line's encoding.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_quote = json.encoder.encode_basestring  # a str as a JSON string, non-ASCII kept
_strict_decoder = json.JSONDecoder(parse_constant=reject_constant)
strict_loads = _strict_decoder.decode
_raw_decode = _strict_decoder.raw_decode


def to_json(value: Any) -> str:
    """Compact JSON text; non-ASCII characters are kept as they are unless the
    text holds a lone surrogate, which UTF-8 cannot encode: then it is escaped."""
    text = _encode(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _encode_ascii(value)
    return text


def exact_json(value: Any) -> str | None:
    """``value`` as JSON text if it reads back exactly, else None."""
    return to_json(value) if is_exact(value) else None


# -- dump ------------------------------------------------------------------------------


def entry_line(
    store: bytes, key: bytes, format: str, value: bytes, number: int | None, expires: float | None
) -> str:
    """One dump line (no trailing newline) from the raw columns of an Entry row.

    Raises UnreadableValue (TamperedValue, UnknownFormat) for a row whose
    value does not verify or whose format a default cache cannot read.
    """
    store, key = bytes(store), bytes(key)
    identity = (name_hash(store) + name_hash(key)).encode()
    return _line(DEFAULT_CODEC, {}, identity, store, key, format, value, number, expires)


def _line(
    default: RowCodec,
    codecs: dict[str, RowCodec],
    identity: bytes,
    store: bytes,
    key: bytes,
    fmt: str,
    value: bytes,
    number: int | None,
    expires: float | None,
) -> str:
    """The line of a row whose signature is bound to ``identity`` (the row's
    store hash and key hash, as in KeyValCache)."""
    value = bytes(value)
    decoded = codecs.get(fmt, default).decode(identity, fmt, value, number)
    # Built as one f-string rather than encoding a dict: a dump makes a line a
    # row, and this makes a third of the objects.
    head = (
        f'{{"store":{_quote(decode_name(store))},"key":{_quote(decode_name(key))},'
        f'"expires":{"null" if expires is None else repr(float(expires))},'
    )
    if is_exact(decoded):
        return _utf8_safe(f'{head}"value":{_encode(decoded)}}}')
    if fmt == PICKLE_FORMAT:
        # The row's own bytes, verified above: the load writes back the same row.
        signed = value
    else:
        # Another format whose value JSON cannot hold (NaN in json.1, or a custom
        # serializer): carried as a pickle, signed here as a pickle row would be.
        signed = signing.sign(
            identity, PICKLE_FORMAT, pickle.dumps(decoded, pickle.HIGHEST_PROTOCOL)
        )
    payload = base64.b64encode(signed[signing.SIGNATURE_SIZE :]).decode("ascii")
    signature = signed[: signing.SIGNATURE_SIZE].hex()
    return _utf8_safe(f'{head}"pickle":"{payload}","signature":"{signature}"}}')


def _utf8_safe(line: str) -> str:
    """``line``, or the same entry with every non-ASCII character escaped if a
    lone surrogate (in a name or the value) keeps it from being UTF-8."""
    if line.isascii():
        return line
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        # Values with surrogate pairs are pickled (is_exact); a name cannot be.
        if _SURROGATE_PAIR.search(line):
            raise UnreadableValue(
                "the store or key name holds a surrogate pair as two code points, "
                "which JSON cannot represent"
            ) from None
        return _encode_ascii(json.loads(line))
    return line


def _live_rows(database: str, store: str | None) -> Iterator[tuple[Any, ...]]:
    """Live rows of one store or all, a page at a time: every page is a range
    scan that starts after the last row of the page before, so memory stays
    constant and no cursor stays open between pages.

    One store is read in (store_hash, key_hash) order, a range of the unique
    index. The whole table is read in ``id`` order, the table's own order:
    InnoDB keeps rows in it, and by the unique index it fetches every row at
    random (a 1,000,000-entry dump took 60 s on MariaDB, against 10 s)."""
    dialect = dialect_for(database, TABLE)
    c = dialect.c
    names = ("store_hash", "key_hash", "store", "key", "format", "value", "number", "expires")
    fixed: tuple[str, ...]
    after: int | str
    if store is None:
        order, where, fixed, after = c["id"], f"{c['id']} > %s", (), 0
    else:
        order, where = c["key_hash"], f"{c['store_hash']} = %s AND {c['key_hash']} > %s"
        fixed, after = (name_hash(encode_name(store)),), ""
    # The order column first: each page starts after the last row's.
    sql = (
        f"SELECT {order}, {', '.join(c[name] for name in names)} FROM {dialect.table} "
        f"WHERE {where} AND {dialect.live} ORDER BY {order} LIMIT %s"
    )
    now = time.time()
    while True:
        with db.cursor(database) as cursor:
            cursor.execute(sql, (*fixed, after, now, PAGE_SIZE))
            page = cursor.fetchall()
        for row in page:
            yield tuple(row[1:])
        if len(page) < PAGE_SIZE:
            return
        after = page[-1][0]


def count_live(database: str, store: str | None = None) -> int:
    """Live entries of one store or all (any version), for a progress total."""
    from django.db.models import Q

    from .models import Entry

    rows = Entry.objects.using(database).filter(
        Q(expires__isnull=True) | Q(expires__gt=time.time())
    )
    if store is not None:
        rows = rows.filter(store_hash=name_hash(encode_name(store)))
    return rows.count()


@dataclass
class DumpResult:
    entries: int = 0
    unreadable: int = 0


def dump(
    write: Callable[[str], object],
    *,
    database: str,
    store: str | None = None,
    serializer: BaseSerializer | None = None,
    on_unreadable: Callable[[UnreadableValue], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> DumpResult:
    """Write every live entry of ``store`` (of every store when None) in
    ``database`` as lines (each ending with a newline) through ``write``.

    ``serializer`` is that of the cache whose rows are dumped, so rows in its
    format are read too. An unreadable row raises UnreadableValue naming it,
    unless ``on_unreadable`` is given: then it is reported there and skipped.
    """
    codecs = {}
    if serializer is not None and serializer.format_tag != PICKLE_FORMAT:
        codecs[serializer.format_tag] = RowCodec(serializer)
    result = DumpResult()
    rows = _live_rows(database, store)
    for store_hash, key_hash, store_bytes, key_bytes, fmt, value, number, expires in rows:
        store_bytes, key_bytes = bytes(store_bytes), bytes(key_bytes)
        identity = (store_hash + key_hash).encode()
        try:
            line = _line(
                DEFAULT_CODEC, codecs, identity, store_bytes, key_bytes, fmt, value, number, expires
            )
        except UnreadableValue as exc:
            error = type(exc)(
                f"store {decode_name(store_bytes)!r}, key {decode_name(key_bytes)!r}: {exc}"
            )
            if on_unreadable is None:
                raise error from exc
            on_unreadable(error)
            result.unreadable += 1
            continue
        write(line + "\n")
        result.entries += 1
        if progress is not None:
            progress(result.entries)
    return result


# -- load ------------------------------------------------------------------------------


class BadLine(ValueError):
    """A line of a dump that cannot be loaded; names its line number."""

    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(f"line {lineno}: {reason}")
        self.lineno = lineno
        self.reason = reason


@dataclass
class LoadResult:
    new: int = 0  # written where no live entry was
    replaced: int = 0  # written over a live entry (replace=True)
    kept: int = 0  # not written: a live entry was there (replace=False)
    expired: int = 0  # not written: expired since the dump
    other_stores: int = 0  # not written: of another store than the one asked for
    bad_lines: int = 0  # not written: reported to on_bad_line

    @property
    def written(self) -> int:
        return self.new + self.replaced


class LineParser:
    """Turns the lines of one load into rows: values given as JSON are
    encoded with ``codec``, and every row is written at ``now``."""

    def __init__(self, codec: RowCodec, now: float) -> None:
        self.codec, self.now = codec, now
        # Consecutive lines are mostly of one store: its bytes and hash are kept.
        self._store: tuple[str, bytes, str] = ("", b"", name_hash(b""))

    def row(self, text: str | bytes, lineno: int) -> Row:
        """The row of one line (expired or not). Raises BadLine for anything
        but a well-formed entry, with a verified signature if it is a pickle."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadLine(lineno, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
        if text[:1].isspace():
            text = text.lstrip()
        try:
            # raw_decode: loads() would match whitespace with two regexes a line.
            entry, end = _raw_decode(text)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise BadLine(lineno, f"invalid JSON: {reason}") from None
        if text[end:].strip():
            raise BadLine(lineno, "invalid JSON: extra data after the entry")
        if not isinstance(entry, dict):
            raise BadLine(lineno, f"expected a JSON object, got {type(entry).__name__}")
        store, key, expires = entry.get("store"), entry.get("key"), entry.get("expires", ...)
        if not isinstance(store, str) or not isinstance(key, str):
            raise BadLine(lineno, '"store" and "key" must be strings')
        if expires is not None and (
            type(expires) not in (int, float) or not math.isfinite(expires)
        ):
            raise BadLine(lineno, '"expires" must be a number or null')
        if store != self._store[0]:
            store_bytes = encode_name(store)
            self._store = (store, store_bytes, name_hash(store_bytes))
        _, store_bytes, store_hash = self._store
        key_bytes = encode_name(key)
        key_hash = name_hash(key_bytes)
        identity = (store_hash + key_hash).encode()
        has_value, has_pickle = "value" in entry, "pickle" in entry
        if has_value == has_pickle:
            raise BadLine(lineno, 'expected exactly one of "value" and "pickle"')
        if has_value:
            try:
                fmt, data, number = self.codec.encode(identity, entry["value"])
            except (TypeError, ValueError, pickle.PicklingError) as exc:
                raise BadLine(lineno, f"the value cannot be stored: {exc}") from None
        else:
            fmt, number = PICKLE_FORMAT, None
            data = _verified_pickle(entry, identity, self.codec, lineno)
        expiry = None if expires is None else float(expires)
        now = self.now
        return (store_bytes, key_bytes, store_hash, key_hash, fmt, data, number, expiry, now, now)


def _verified_pickle(entry: dict[str, Any], identity: bytes, codec: RowCodec, lineno: int) -> bytes:
    """The stored bytes (signature + pickle) of a pickle line, verified."""
    payload, signature = entry["pickle"], entry.get("signature")
    if not isinstance(payload, str) or not isinstance(signature, str):
        raise BadLine(lineno, '"pickle" and "signature" must be strings')
    try:
        data = bytes.fromhex(signature) + base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise BadLine(lineno, f"malformed pickle or signature: {exc}") from None
    try:
        signing.verify(identity, PICKLE_FORMAT, data)
    except UnreadableValue as exc:
        raise BadLine(lineno, f"refused: {exc}") from None
    if codec.serializer.format_tag != PICKLE_FORMAT:
        raise BadLine(
            lineno,
            f"a pickled value cannot go into a cache whose serializer writes "
            f"{codec.serializer.format_tag!r} (it could not read it back)",
        )
    return data


def load(
    lines: Iterable[str | bytes],
    *,
    database: str,
    serializer: BaseSerializer,
    replace: bool = False,
    store: str | None = None,
    on_bad_line: Callable[[BadLine], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Write the entries of dump ``lines`` into ``database``.

    Values given as JSON are stored with ``serializer`` (that of the cache
    they are loaded for), signed with this project's SECRET_KEY; pickles are
    written as dumped once their signature verifies. Entries whose key is live
    are kept unless ``replace``; expired entries are skipped; with ``store``,
    so are entries of other stores.

    All or nothing: the first bad line raises BadLine and nothing is written.
    With ``on_bad_line``, bad lines are passed to it instead and every good
    line is written, a batch per transaction.
    """
    dialect = dialect_for(database, TABLE)
    size = dialect.batch_size(len(ROW_COLUMNS))
    result = LoadResult()
    batch: dict[tuple[str, str], Row] = {}
    now = time.time()
    parser = LineParser(RowCodec(serializer), now)
    only = None if store is None else name_hash(encode_name(store))

    def flush() -> None:
        if batch:
            # Inside the load's transaction a savepoint would buy nothing.
            with (
                transaction.atomic(using=database, savepoint=False),
                db.cursor(database) as cursor,
            ):
                _write_batch(cursor, dialect, list(batch.values()), replace, result)
            batch.clear()

    with transaction.atomic(using=database) if on_bad_line is None else nullcontext():
        for lineno, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                row = parser.row(text, lineno)
            except BadLine as exc:
                if on_bad_line is None:
                    raise
                result.bad_lines += 1
                on_bad_line(exc)
                continue
            if only is not None and row[2] != only:
                result.other_stores += 1
            elif row[7] is not None and row[7] <= now:
                result.expired += 1
            else:
                # Of two lines for one key the later wins, as it would line by
                # line (and one statement may not write a row twice).
                batch[(row[2], row[3])] = row
                if len(batch) >= size:
                    flush()
            if progress is not None:
                progress(lineno)
        flush()
    return result


def _write_batch(
    cursor: db.Cursor, dialect: Dialect, rows: list[Row], replace: bool, result: LoadResult
) -> None:
    """Upsert (``replace``) or add rows, a statement per batch the dialect
    cuts them into, and count what happened.

    Where INSERT has RETURNING (SQLite, PostgreSQL), the statement reports it:
    the rows an add wrote, or each upserted row's ``writes`` (1 when no live
    row was there). MariaDB/MySQL first look up which keys are live.
    """
    clause = dialect.upsert_clause() if replace else dialect.add_clause()
    for part in dialect.row_batches(rows):
        if isinstance(dialect, MySQLDialect):
            live = _live_count(cursor, dialect, part)
            cursor.execute(*dialect.insert_rows_query(part, clause))
            new, overwritten = len(part) - live, live if replace else 0
        else:
            cursor.execute(*dialect.insert_rows_query(part, clause))
            returned = cursor.fetchall()
            new = sum(1 for (writes,) in returned if writes == 1) if replace else len(returned)
            overwritten = len(part) - new if replace else 0
        result.new += new
        result.replaced += overwritten
        result.kept += len(part) - new - overwritten


def _live_count(cursor: db.Cursor, dialect: Dialect, rows: Sequence[Row]) -> int:
    """How many of ``rows`` have a live row in the table (MySQL's stand-in for
    RETURNING); one query a store in the batch."""
    by_store: dict[str, list[str]] = {}
    for row in rows:
        by_store.setdefault(row[2], []).append(row[3])
    c, now, live = dialect.c, time.time(), 0
    for store_hash, key_hashes in by_store.items():
        cursor.execute(
            f"SELECT COUNT(*) FROM {dialect.table} WHERE {c['store_hash']} = %s "
            f"AND {c['key_hash']} IN ({', '.join(['%s'] * len(key_hashes))}) AND {dialect.live}",
            [store_hash, *key_hashes, now],
        )
        live += int(cursor.fetchone()[0])
    return live
