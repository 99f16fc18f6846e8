"""The table behind every store: one row a key.

The model exists for migrations, the admin and ``dumpdata``; reads and writes
of the cache API never go through the ORM but through the SQL in
:mod:`keyval_backend.sql`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

from .identity import printable
from .lazy import lazy_names
from .serializers import FORMAT_TAG_MAX_LENGTH

HASH_LENGTH = 32


class Entry(models.Model):
    """One key of one store.

    ``store`` and ``key`` hold the exact UTF-8 bytes of the names, since text
    columns cannot hold every ``str`` (PostgreSQL refuses NUL, MariaDB
    collations fold case and accents). Lookups go through ``store_hash`` and
    ``key_hash`` (BLAKE2b-128 of those bytes, hex), which are short, fixed
    length and compared exactly on every database.
    """

    store = models.BinaryField(help_text="UTF-8 bytes of the store name.")
    key = models.BinaryField(
        help_text="UTF-8 bytes of the key as the cache's key function made it."
    )
    store_hash = models.CharField(max_length=HASH_LENGTH, editable=False)
    key_hash = models.CharField(max_length=HASH_LENGTH, editable=False)
    format = models.CharField(max_length=FORMAT_TAG_MAX_LENGTH)
    value = models.BinaryField(default=b"", blank=True)
    number = models.BigIntegerField(null=True, blank=True)
    expires = models.FloatField(null=True, blank=True, db_index=True)
    created = models.FloatField()
    updated = models.FloatField()
    writes = models.BigIntegerField(default=1)

    class Meta:
        db_table = "keyval_backend_entry"
        verbose_name = "entry"
        verbose_name_plural = "entries"
        constraints = [  # noqa: RUF012  (Django reads Meta attributes; never mutated)
            models.UniqueConstraint(
                fields=["store_hash", "key_hash"], name="keyval_entry_store_key_uniq"
            ),
        ]

    def __str__(self) -> str:
        # Shown by the admin in pages and stored in its log: escaped.
        return f"{printable(self.store_name)}: {printable(self.key_name)}"

    @property
    def store_name(self) -> str:
        return bytes(self.store).decode("utf-8", "surrogatepass")

    @property
    def key_name(self) -> str:
        return bytes(self.key).decode("utf-8", "surrogatepass")


class Member(models.Model):
    """One field of a hash, or one member of a set or sorted set.

    Every member is a row, so that ``hset``, ``sadd`` or ``zadd`` of one member
    is one statement and never a read-modify-write of a whole collection. The
    structure itself is its key's Entry row (format ``hash``, ``set`` or
    ``zset``), which carries the expiry; deleting that row (``delete``,
    ``clear``, a purge or a cull) deletes its members through an ``ON DELETE
    CASCADE`` foreign key that the migration creates in the database itself,
    so that no statement on the hot path has to remember them.

    ``member`` holds the exact bytes that identify the member (a hash field's
    UTF-8, or a set member's serialized form, compared as Redis compares
    bytes), ``member_hash`` their BLAKE2b-128; ``signature`` is the MAC of a
    signed serialized member, kept apart so that members order by their bytes.
    ``format``/``value``/``number`` hold a hash field's value as the Entry
    columns do, ``score`` a sorted set member's score.
    """

    entry = models.ForeignKey(
        Entry, on_delete=models.DO_NOTHING, db_constraint=False, related_name="members"
    )
    member_hash = models.CharField(max_length=HASH_LENGTH)
    member_format = models.CharField(max_length=FORMAT_TAG_MAX_LENGTH)
    member = models.BinaryField()
    signature = models.BinaryField(default=b"", blank=True)
    format = models.CharField(max_length=FORMAT_TAG_MAX_LENGTH, default="", blank=True)
    value = models.BinaryField(default=b"", blank=True)
    number = models.BigIntegerField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    writes = models.BigIntegerField(default=1)

    class Meta:
        db_table = "keyval_backend_member"
        constraints = [  # noqa: RUF012  (Django reads Meta attributes; never mutated)
            models.UniqueConstraint(
                fields=["entry", "member_hash"], name="keyval_member_entry_member_uniq"
            ),
        ]
        indexes = [  # noqa: RUF012
            models.Index(fields=["entry", "score"], name="keyval_member_entry_score"),
        ]

    def __str__(self) -> str:
        return f"member {self.member_hash} of entry {self.entry_id}"


__all__ = ["Entry", "KeyVal", "Member"]

if TYPE_CHECKING:
    from .facade import KeyVal


# django-keyval 0.1.x users import the facade from here. Served on first use
# rather than imported above: the facade imports the cache, which imports
# this module, and Django imports this module while the app registry loads.
__getattr__ = lazy_names(__name__, {"KeyVal": "keyval_backend.facade"})
