"""The floor: the raw database driver running the statements KeyValCache runs.

No Django between the program and the driver, and no work beyond what any
backend storing this value in this table must do. Per operation the floor
includes, as KeyValCache does:

* making the key the way Django's default key function does (``":1:" + key``),
  encoding it to UTF-8 and hashing it (BLAKE2b-128 hex), since the table is
  looked up by hash;
* for a write, ``pickle.dumps`` and a keyed BLAKE2b-256 signature over the
  row identity, format tag and payload (integers are stored natively in
  ``number``, unsigned, as KeyValCache stores them); for a read, verifying the
  signature and ``pickle.loads``;
* ``time.time()`` for the liveness test, one ``execute`` of the statement
  text taken from KeyValCache's own dialect (so it is the same statement by
  construction), and reading its result to the end.

It connects on its own, configured as Django configures its connection, since
a backend cannot choose otherwise: stdlib ``sqlite3`` in autocommit mode with
Django's ``detect_types`` and the same pragmas; ``psycopg`` 3 in autocommit
mode with server-side binding (as KeyValCache's lean cursor binds), and
prepared statements only when the setting's OPTIONS set ``prepare_threshold``;
``MySQLdb`` with ``CLIENT.FOUND_ROWS`` and READ COMMITTED. It writes a store
of its own in the same table.
"""

from __future__ import annotations

import hmac
import pickle
import time
from collections.abc import Iterable, Mapping
from hashlib import blake2b
from typing import Any

from .databases import Database

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
PICKLE_TAG = "pickle.1"
SIGNATURE_SIZE = 32
# Rows per statement when filling a store (untimed).
FILL_CHUNK = 500


class Floor:
    """Every operation of the benchmark, straight on the driver."""

    def __init__(self, db: Database, dialect: Any, secret: str, store: str) -> None:
        self.vendor = db.vendor
        self.conn = _connect(db)
        self.cur = self.conn.cursor()
        self.returning = db.vendor != "mysql"
        self.delete_returning = db.vendor != "mysql" or dialect.has_delete_returning
        self.store_bytes = store.encode()
        self.store_hash = blake2b(self.store_bytes, digest_size=16).hexdigest()
        self.signing_key = hmac.digest(secret.encode(), b"keyval-bench-floor", "sha256")
        self.dialect = dialect
        self._translated: dict[str, str] = {}
        q = self._q
        self.get_sql = q(dialect.get_sql)
        self.upsert_sql = q(dialect.upsert_sql)
        self.add_sql = q(dialect.add_sql)
        self.delete_sql = q(dialect.delete_sql)
        self.incr_sql = q(dialect.incr_sql)
        self.pop_sql = q(dialect.pop_sql) if self.delete_returning else ""
        self.pop_select_sql = q(
            f"SELECT {dialect.popped_columns} FROM {dialect.table} "
            f"WHERE {dialect.where_key_live} FOR UPDATE"
        )

    def _q(self, sql: str) -> str:
        """The statement in the driver's placeholder style, translated once
        per text (as KeyValCache's lean cursor does)."""
        if self.vendor != "sqlite":
            return sql
        translated = self._translated.get(sql)
        if translated is None:
            translated = self._translated[sql] = sql.replace("%s", "?")
        return translated

    # -- what every operation shares --------------------------------------------

    def _hash(self, key: str) -> tuple[bytes, str]:
        key_bytes = (":1:" + key).encode()
        return key_bytes, blake2b(key_bytes, digest_size=16).hexdigest()

    def _encode(self, key_hash: str, value: Any) -> tuple[str, bytes, int | None]:
        if type(value) is int and INT64_MIN <= value <= INT64_MAX:
            return "int", b"", value
        payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        message = (self.store_hash + key_hash).encode() + b"pickle.1\x00" + payload
        return PICKLE_TAG, self._mac(message) + payload, None

    def _decode(self, key_hash: str, fmt: str, data: bytes, number: int | None) -> Any:
        if fmt == "int":
            return number
        data = bytes(data)
        payload = data[SIGNATURE_SIZE:]
        message = (self.store_hash + key_hash).encode() + b"pickle.1\x00" + payload
        if not hmac.compare_digest(self._mac(message), data[:SIGNATURE_SIZE]):
            raise ValueError("floor: signature mismatch")
        return pickle.loads(payload)

    def _mac(self, message: bytes) -> bytes:
        return blake2b(message, key=self.signing_key, digest_size=SIGNATURE_SIZE).digest()

    def _row(self, key: str, value: Any, now: float) -> tuple[Any, ...]:
        key_bytes, key_hash = self._hash(key)
        fmt, data, number = self._encode(key_hash, value)
        return (
            self.store_bytes,
            key_bytes,
            self.store_hash,
            key_hash,
            fmt,
            data,
            number,
            None,
            now,
            now,
        )

    # -- single keys --------------------------------------------------------------

    def get(self, key: str) -> Any:
        _, key_hash = self._hash(key)
        cur = self.cur
        cur.execute(self.get_sql, (self.store_hash, key_hash, time.time()))
        rows = cur.fetchall()
        if not rows:
            return None
        fmt, data, number = rows[0]
        return self._decode(key_hash, fmt, data, number)

    def set(self, key: str, value: Any) -> None:
        cur = self.cur
        cur.execute(self.upsert_sql, self._row(key, value, time.time()))
        if self.returning:
            cur.fetchall()

    def add(self, key: str, value: Any) -> bool:
        cur = self.cur
        cur.execute(self.add_sql, self._row(key, value, time.time()))
        if self.returning:
            return bool(cur.fetchall())
        return bool(cur.rowcount == 2 or (cur.rowcount == 1 and cur.lastrowid != 0))

    def delete(self, key: str) -> bool:
        _, key_hash = self._hash(key)
        cur = self.cur
        cur.execute(self.delete_sql, (self.store_hash, key_hash, time.time()))
        return bool(cur.rowcount)

    def incr(self, key: str, delta: int = 1) -> int:
        _, key_hash = self._hash(key)
        now = time.time()
        low, high = (INT64_MIN, INT64_MAX - delta) if delta >= 0 else (INT64_MIN - delta, INT64_MAX)
        cur = self.cur
        cur.execute(self.incr_sql, (delta, now, self.store_hash, key_hash, now, low, high))
        if self.returning:
            rows = cur.fetchall()
            if not rows:
                raise ValueError(f"floor: no integer at {key!r}")
            return int(rows[0][0])
        if cur.rowcount != 1:
            raise ValueError(f"floor: no integer at {key!r}")
        value = int(cur.lastrowid)
        return value - 2**64 if value >= 2**63 else value

    def pop(self, key: str) -> Any:
        _, key_hash = self._hash(key)
        params = (self.store_hash, key_hash, time.time())
        cur = self.cur
        if self.delete_returning:
            cur.execute(self.pop_sql, params)
            rows = cur.fetchall()
        else:  # MySQL: no DELETE ... RETURNING, so a short locking transaction
            cur.execute("START TRANSACTION")
            try:
                cur.execute(self.pop_select_sql, params)
                rows = cur.fetchall()
                if rows:
                    cur.execute(self.delete_sql, params)
            finally:
                self.conn.commit()
        if not rows:
            return None
        row = rows[0]  # (format, value, number, then what the backend keeps to restore it)
        return self._decode(key_hash, row[0], row[1], row[2])

    # -- batches ----------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        by_hash = {self._hash(key)[1]: key for key in keys}
        sql, params = self.dialect.get_many_query(self.store_hash, list(by_hash), time.time())
        cur = self.cur
        cur.execute(self._q(sql), params)
        return {
            by_hash[key_hash]: self._decode(key_hash, fmt, data, number)
            for key_hash, fmt, data, number in cur.fetchall()
        }

    def set_many(self, data: Mapping[str, Any]) -> None:
        now = time.time()
        sql, params = self.dialect.set_many_query(
            [self._row(key, value, now) for key, value in data.items()]
        )
        self.cur.execute(self._q(sql), params)

    def delete_many(self, keys: Iterable[str]) -> None:
        sql, params = self.dialect.delete_many_query(
            self.store_hash, [self._hash(key)[1] for key in keys]
        )
        self.cur.execute(self._q(sql), params)

    # -- untimed helpers ----------------------------------------------------------

    def fill(self, data: Mapping[str, Any]) -> None:
        items = list(data.items())
        for start in range(0, len(items), FILL_CHUNK):
            self.set_many(dict(items[start : start + FILL_CHUNK]))

    def close(self) -> None:
        self.conn.close()


def _connect(db: Database) -> Any:
    entry = db.settings_dict
    if db.vendor == "sqlite":
        import sqlite3

        conn = sqlite3.connect(
            entry["NAME"],
            isolation_level=None,
            check_same_thread=False,
            detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
        )
        for pragma in db.pragmas:
            conn.execute(pragma)
        return conn
    if db.vendor == "postgresql":
        import psycopg

        options = entry.get("OPTIONS", {})
        # Server-side binding, as KeyValCache's lean cursor binds whatever
        # Django's cursors do; named prepared statements as the setting says.
        return psycopg.connect(
            dbname=entry["NAME"],
            user=entry["USER"],
            host=entry["HOST"],
            port=entry["PORT"],
            autocommit=True,
            cursor_factory=psycopg.Cursor,
            prepare_threshold=options.get("prepare_threshold"),
        )
    import MySQLdb
    from MySQLdb.constants import CLIENT

    conn = MySQLdb.connect(
        host=entry["HOST"],
        port=int(entry["PORT"]),
        user=entry["USER"],
        password=entry["PASSWORD"],
        database=entry["NAME"],
        charset="utf8mb4",
        client_flag=CLIENT.FOUND_ROWS,
    )
    conn.autocommit(True)
    conn.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return conn
