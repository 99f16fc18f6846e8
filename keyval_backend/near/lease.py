"""MariaDB and MySQL: no push, so every value is leased.

The database tells no one of a write (a trigger on the entry table would stop
its UPDATEs from reporting LAST_INSERT_ID), so a value read from it is trusted
for ``OPTIONS["NEAR_CACHE"]["POLL_INTERVAL"]`` seconds (1 by default) and then
read again: another process's write is seen at most that long after its
commit. This process's own writes drop their keys at once, as everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import NearCache


class LeaseWatcher:
    vendor = "mysql"

    def __init__(self, interval: float) -> None:
        self.lease: float | None = interval

    def attach(self, near: NearCache) -> None:
        pass  # nothing to tell it: its entries run out by themselves

    def current(self) -> bool:
        return True
