"""Keys by pattern: ``keys``, ``iter_keys`` and ``delete_pattern`` over Redis
glob patterns (see :mod:`keyval_backend.patterns`), django-redis's way:
matched against the key as the user wrote it, in one version and key prefix.

The keys are read a page per statement from the range of the key index that
the pattern's literal head gives (:class:`~keyval_backend.cache.KeyPages`), on
Django's connection for the sync methods and on the native driver for their
``a*`` twins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from ..patterns import compile_glob
from .base import StructureCommands, async_twins
from .steps import Statement, Steps, command

# Keys deleted per statement by delete_pattern: each statement is its own
# short transaction, so other writers never wait long behind it.
DELETE_BATCH = 500


@async_twins("delete_pattern")
class KeyCommands(StructureCommands):
    def iter_keys(
        self, search: str = "*", itersize: int | None = None, version: int | None = None
    ) -> Iterator[str]:
        """The live keys matching the glob ``search``, read ``itersize`` (by
        default 1,000) at a time."""
        head, regex = compile_glob(search)
        for key, _, _ in self._pages(head, version, False, regex, None, itersize):
            yield key

    def keys(self, search: str = "*", version: int | None = None) -> list[str]:
        return list(self.iter_keys(search, version=version))

    async def aiter_keys(
        self, search: str = "*", itersize: int | None = None, version: int | None = None
    ) -> AsyncIterator[str]:
        """Async :meth:`iter_keys`, a page per statement as it is."""
        head, regex = compile_glob(search)
        async for key, _ in self._apages(head, version, regex, itersize):
            yield key

    async def akeys(self, search: str = "*", version: int | None = None) -> list[str]:
        """Async :meth:`keys`."""
        return [key async for key in self.aiter_keys(search, version=version)]

    @command
    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
    ) -> Steps[int]:
        """Delete every live key matching ``pattern``; return how many. Keys
        are read from the database that is written (never a replica) and
        deleted ``itersize`` (by default 500) per statement, each its own
        transaction, so no lock is held for long and memory stays constant."""
        dialect = self._get_dialect()
        head, regex = compile_glob(pattern)
        pages = self._key_pages(head, version, False, regex, prefix, itersize)
        batch = itersize or DELETE_BATCH
        deleted = 0
        pending: list[str] = []
        while not pages.done:
            rows, _ = yield Statement(*pages.query(dialect))
            pending.extend(key_hash for _, key_hash, _ in pages.take(dialect, rows))
            while len(pending) >= batch or (pending and pages.done):
                chunk, pending = pending[:batch], pending[batch:]
                query = dialect.delete_many_query(self._store_hash, chunk)
                _, count = yield Statement(*query, rows=False, write=True)
                deleted += count
                self._near_written(chunk)
        return deleted
