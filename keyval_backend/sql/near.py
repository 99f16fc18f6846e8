"""The statements of the near cache's watchers (:mod:`keyval_backend.near`),
over what migration 0004 made: SQLite's change log, PostgreSQL's listening
deadline. They run on the watchers' own connections, never a request's."""

from __future__ import annotations

# Names of what migration 0004 makes (it imports them from here).
CHANGE_TABLE = "keyval_backend_change"
KEEP_CHANGES = 10_000
CHANNEL = "keyval_backend_near"
UNTIL_SEQUENCE = "keyval_backend_near_until"
NOTIFY_FUNCTION = "keyval_backend_near_notify"

# SQLite: the changes after the last one seen, with the oldest and newest ids
# the log still holds (a gap means trimmed changes: drop everything).
CHANGES_SQL = (
    f'SELECT "id", "store_hash", "key_hash" FROM "{CHANGE_TABLE}" WHERE "id" > ? '
    f'UNION SELECT "id", "store_hash", "key_hash" FROM "{CHANGE_TABLE}" '
    f'WHERE "id" = (SELECT MIN("id") FROM "{CHANGE_TABLE}") '
    f'UNION SELECT "id", "store_hash", "key_hash" FROM "{CHANGE_TABLE}" '
    f'WHERE "id" = (SELECT MAX("id") FROM "{CHANGE_TABLE}") ORDER BY 1'
)
LAST_CHANGE_SQL = f'SELECT COALESCE(MAX("id"), 0) FROM "{CHANGE_TABLE}"'

# PostgreSQL.
LISTEN_SQL = f'LISTEN "{CHANNEL}"'
PING_SQL = "SELECT pg_notify(%s, %s)"
SESSION_SQL = "SELECT pg_backend_pid(), %s::text IN (SELECT pg_listening_channels())"
# The deadline until which writers notify, pushed an hour ahead when less than
# half of it is left; never pulled back (GREATEST), so listeners cannot shorten
# one another's.
EXTEND_SQL = (
    f"SELECT setval('{UNTIL_SEQUENCE}', GREATEST("
    f'(SELECT last_value FROM "{UNTIL_SEQUENCE}"), '
    f"extract(epoch FROM clock_timestamp())::bigint + %s))"
)
DEADLINE_SQL = f'SELECT last_value - extract(epoch FROM clock_timestamp()) FROM "{UNTIL_SEQUENCE}"'
# Transactions that may have written without notifying (they checked the
# deadline before it was set) have ids below the snapshot's xmax at that time;
# memory is trusted once none of them runs any more.
XMAX_SQL = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
XMIN_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
