"""The Django admin for the entries of every store: browse, search, edit.

Reads go through the ORM, so that the admin's changelist machinery (filters,
ordering, pagination) works as usual; every write goes through
:class:`~keyval_backend.cache.KeyValCache`, so that an edit is serialized,
signed and stored exactly as a write of the API would be. Stored values are
shown only once their signature verifies: a row anyone could have written is
never unpickled here.

One concern a module, as in ``django.contrib.admin``: :mod:`.options` (the
``EntryAdmin``), :mod:`.values` (what is shown of a value), :mod:`.filters`,
:mod:`.lookups` (byte-exact search), :mod:`.changelist` (the capped
paginator), :mod:`.forms`, :mod:`.actions`, :mod:`.views` (the store
summary) and :mod:`.store` (where the admin reads and writes).
"""

from __future__ import annotations

from .options import EntryAdmin

__all__ = ["EntryAdmin"]
