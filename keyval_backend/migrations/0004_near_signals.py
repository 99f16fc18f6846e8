"""What other processes' near caches learn a write from (docs/near_cache.rst).

- SQLite: a change log, ``keyval_backend_change``, one row a written key
  (store hash, key hash), kept by triggers on the entry table, which also trim
  it to its last 10,000 rows. A process whose WAL index changed reads the rows
  after the last it saw and drops those keys from its memory.
- PostgreSQL: statement triggers that ``NOTIFY keyval_backend_near`` with the
  store and the keys each statement wrote (the store alone past 200 keys), in
  the writer's transaction, so a rolled-back write notifies nobody. NOTIFY
  serialises the commits of the transactions that send one, so the triggers
  only send while a near cache listens: listening processes keep the sequence
  ``keyval_backend_near_until`` at a deadline an hour ahead (a sequence,
  because it is read outside every transaction's snapshot).
- MariaDB/MySQL: nothing (a trigger there stops UPDATE from reporting
  LAST_INSERT_ID, which the store's statements answer through); near caches
  there re-read what they hold at their ``POLL_INTERVAL``.

Django's state has none of this to know of, hence raw SQL.
"""

from django.db import migrations

from keyval_backend.sql.near import (
    CHANGE_TABLE,
    CHANNEL,
    KEEP_CHANGES,
    NOTIFY_FUNCTION,
    UNTIL_SEQUENCE,
)

# Keys named one by one in a notification (200 x 33 bytes is under the 8,000
# bytes a payload may hold); more, and the store is named alone.
NOTIFY_KEYS = 200
# Stores named in one statement's notifications; more, and '*' means all.
NOTIFY_STORES = 50
_EVENTS = {"INSERT": "NEW", "UPDATE": "NEW", "DELETE": "OLD"}


def _sqlite(qn):
    entry, change = qn("keyval_backend_entry"), qn(CHANGE_TABLE)
    store, key = qn("store_hash"), qn("key_hash")
    statements = [
        f"CREATE TABLE {change} ({qn('id')} integer NOT NULL PRIMARY KEY, "
        f"{store} varchar(32) NOT NULL, {key} varchar(32) NOT NULL)"
    ]
    for event, row in _EVENTS.items():
        # INTEGER PRIMARY KEY without AUTOINCREMENT: the next id is one past
        # the largest, which the trim never removes, so ids rise in commit
        # order (SQLite has one writer at a time) with no gaps but trimmed ones.
        statements.append(
            f"CREATE TRIGGER {qn(f'keyval_change_on_{event.lower()}')} AFTER {event} ON {entry} "
            f"FOR EACH ROW BEGIN "
            f"INSERT INTO {change} ({store}, {key}) VALUES ({row}.{store}, {row}.{key}); "
            f"DELETE FROM {change} WHERE {qn('id')} <= last_insert_rowid() - {KEEP_CHANGES}; "
            f"END"
        )
    return statements


def _postgresql(qn):
    entry = qn("keyval_backend_entry")
    function = qn(NOTIFY_FUNCTION)
    statements = [
        f"CREATE SEQUENCE {qn(UNTIL_SEQUENCE)} MINVALUE 0 START 0",
        f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    found record;
    stores integer;
BEGIN
    IF (SELECT last_value FROM {qn(UNTIL_SEQUENCE)})
            <= extract(epoch FROM clock_timestamp()) THEN
        RETURN NULL;  -- no near cache listens
    END IF;
    SELECT count(DISTINCT store_hash) INTO stores FROM written;
    IF stores > {NOTIFY_STORES} THEN
        PERFORM pg_notify('{CHANNEL}', '*');
        RETURN NULL;
    END IF;
    FOR found IN SELECT store_hash, count(*) AS keys FROM written GROUP BY store_hash LOOP
        IF found.keys > {NOTIFY_KEYS} THEN
            PERFORM pg_notify('{CHANNEL}', found.store_hash);
        ELSE
            PERFORM pg_notify('{CHANNEL}', found.store_hash || ' ' || (
                SELECT string_agg(key_hash, ',') FROM written
                WHERE store_hash = found.store_hash));
        END IF;
    END LOOP;
    RETURN NULL;
END $$""",
    ]
    for event, row in _EVENTS.items():
        statements.append(
            f"CREATE TRIGGER {qn(f'keyval_near_on_{event.lower()}')} AFTER {event} ON {entry} "
            f"REFERENCING {row} TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return statements


def create_signals(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    qn = schema_editor.quote_name
    statements = {"sqlite": _sqlite, "postgresql": _postgresql}.get(vendor)
    for statement in statements(qn) if statements else []:
        schema_editor.execute(statement)


def drop_signals(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    qn = schema_editor.quote_name
    entry = qn("keyval_backend_entry")
    if vendor == "sqlite":
        for event in _EVENTS:
            schema_editor.execute(f"DROP TRIGGER {qn(f'keyval_change_on_{event.lower()}')}")
        schema_editor.execute(f"DROP TABLE {qn(CHANGE_TABLE)}")
    elif vendor == "postgresql":
        for event in _EVENTS:
            schema_editor.execute(f"DROP TRIGGER {qn(f'keyval_near_on_{event.lower()}')} ON {entry}")
        schema_editor.execute(f"DROP FUNCTION {qn(NOTIFY_FUNCTION)}()")
        schema_editor.execute(f"DROP SEQUENCE {qn(UNTIL_SEQUENCE)}")


class Migration(migrations.Migration):
    dependencies = [
        ("keyval_backend", "0003_entry_key_head_index"),
    ]

    operations = [migrations.RunPython(create_signals, drop_signals)]
