"""Keys by pattern: ``keys``, ``iter_keys`` and ``delete_pattern`` over Redis
glob patterns (see :mod:`keyval_backend.patterns`), django-redis's way:
matched against the key as the user wrote it, in one version and key prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from .. import db
from ..patterns import compile_glob
from .base import StructureCommands, async_twins

# Keys deleted per statement by delete_pattern: each statement is its own
# short transaction, so other writers never wait long behind it.
DELETE_BATCH = 500


@async_twins("keys", "delete_pattern")
class KeyCommands(StructureCommands):
    def iter_keys(
        self, search: str = "*", itersize: int | None = None, version: int | None = None
    ) -> Iterator[str]:
        """The live keys matching the glob ``search``, read ``itersize`` (by
        default 1,000) at a time from the range of the key index that the
        pattern's literal head gives."""
        for key, _ in self._matching(search, version, None, itersize, stale_ok=True):
            yield key

    def keys(self, search: str = "*", version: int | None = None) -> list[str]:
        return list(self.iter_keys(search, version=version))

    async def aiter_keys(
        self, search: str = "*", itersize: int | None = None, version: int | None = None
    ) -> AsyncIterator[str]:
        """Async :meth:`iter_keys` (the keys are read before the first one
        is yielded)."""
        for key in await self.akeys(search, version):  # type: ignore[attr-defined]
            yield key

    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
    ) -> int:
        """Delete every live key matching ``pattern``; return how many. Keys
        are deleted ``itersize`` (by default 500) per statement, each its own
        transaction, so no lock is held for long."""
        dialect = self._get_dialect()
        batch = itersize or DELETE_BATCH
        deleted = 0
        pending: list[str] = []

        def flush() -> int:
            chunk = list(pending)
            pending.clear()

            def attempt() -> int:
                with db.cursor(dialect.alias) as cursor:
                    cursor.execute(*dialect.delete_many_query(self._store_hash, chunk))
                    return int(cursor.rowcount)

            count = db.retry_on_deadlock(dialect.alias, attempt)
            self._near_written(chunk)
            return count

        for _, key_hash in self._matching(pattern, version, prefix, itersize, stale_ok=False):
            pending.append(key_hash)
            if len(pending) >= batch:
                deleted += flush()
        if pending:
            deleted += flush()
        return deleted

    def _matching(
        self,
        pattern: str,
        version: int | None,
        prefix: str | None,
        itersize: int | None,
        stale_ok: bool,
    ) -> Iterator[tuple[str, str]]:
        """``(key, key hash)`` of the live keys matching ``pattern``: the
        keys in the index range of its literal head that match it whole."""
        head, regex = compile_glob(pattern)
        pages = self._pages(head, version, False, regex, prefix, itersize, stale_ok)
        for key, key_hash, _ in pages:
            yield key, key_hash
