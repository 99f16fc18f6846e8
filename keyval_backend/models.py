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


__all__ = ["Entry", "KeyVal"]

if TYPE_CHECKING:
    from .facade import KeyVal


# django-keyval 0.1.x users import the facade from here. Served on first use
# rather than imported above: the facade imports the cache, which imports
# this module, and Django imports this module while the app registry loads.
__getattr__ = lazy_names(__name__, {"KeyVal": "keyval_backend.facade"})
