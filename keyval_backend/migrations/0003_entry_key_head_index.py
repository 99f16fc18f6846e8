"""An index on the head of each key, so that listing the keys of a prefix (a
glob pattern's literal head: ``user:*``) reads a range of the index instead
of every key of the store.

Keys have any length and BLOB columns index differently on each vendor: an
expression index on the first 255 bytes (SQLite, PostgreSQL), a prefix index
on MariaDB/MySQL. Django's state has no index to know of, hence raw SQL.
Building an index on a populated table takes a scan of it; on PostgreSQL a
large store may prefer to build it with ``CREATE INDEX CONCURRENTLY`` by hand
first (same name) and fake this migration.
"""

from django.db import migrations

NAME = "keyval_entry_store_key_head"
HEAD_BYTES = 255


def create_index(apps, schema_editor):
    qn = schema_editor.quote_name
    vendor = schema_editor.connection.vendor
    table, key = qn("keyval_backend_entry"), qn("key")
    if vendor == "mysql":
        columns = f"{qn('store_hash')}, {key}({HEAD_BYTES})"
    elif vendor == "postgresql":
        columns = f"{qn('store_hash')}, (substring({key} from 1 for {HEAD_BYTES})), {qn('key_hash')}"
    else:
        columns = f"{qn('store_hash')}, substr({key}, 1, {HEAD_BYTES}), {qn('key_hash')}"
    schema_editor.execute(f"CREATE INDEX {qn(NAME)} ON {table} ({columns})")


def drop_index(apps, schema_editor):
    qn = schema_editor.quote_name
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"DROP INDEX {qn(NAME)} ON {qn('keyval_backend_entry')}")
    else:
        schema_editor.execute(f"DROP INDEX {qn(NAME)}")


class Migration(migrations.Migration):
    dependencies = [
        ("keyval_backend", "0002_member"),
    ]

    operations = [migrations.RunPython(create_index, drop_index, atomic=False)]
