"""Exceptions raised by keyval_backend beyond Django's own."""

from __future__ import annotations

from django.db import DatabaseError


class KeyValError(Exception):
    """Base class of every exception keyval_backend raises itself."""


class UnreadableValue(KeyValError):
    """A stored value cannot be turned back into a Python object.

    Raised by reads (``get``, ``pop``, ``get_many``, ...) instead of returning a
    wrong value; the row itself is left untouched so it can be inspected.
    """


class TamperedValue(UnreadableValue):
    """A signed value failed verification: it was changed, truncated or
    written under a key that is neither ``SECRET_KEY`` nor one of
    ``SECRET_KEY_FALLBACKS``. It is never unpickled."""


class UnknownFormat(UnreadableValue):
    """A row's format tag names a serializer this cache does not read (an
    unknown tag, or ``pickle`` on a cache configured not to unpickle)."""


class WrongTypeError(UnreadableValue, TypeError):
    """A key was used as a kind of value it does not hold: ``get`` of a hash,
    ``hset`` on a plain value, ``sadd`` on a sorted set (Redis's WRONGTYPE).
    Nothing is changed. A hash, set, sorted set or lock read as a plain value
    is unreadable as one, so the admin, ``dump`` and the command report it as
    they report any unreadable row."""


class LockError(KeyValError):
    """A lock could not be taken within the time allowed, or was used in a way
    its state does not allow (released while not held, extended without a
    timeout); the names and messages are redis-py's ``LockError``'s."""

    def __init__(self, message: str = "", lock_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lock_name = lock_name


class LockNotOwnedError(LockError):
    """The lock is no longer held by this owner: it expired and may have been
    taken by another, or was deleted."""


class ReadOnlyDatabase(KeyValError, DatabaseError):
    """A write reached a database that only reads: a hot standby, a replica,
    a server in read-only mode.

    The store writes (and makes every read that decides a write) on
    ``OPTIONS["DATABASE"]``, else on the alias the router's ``db_for_write``
    gives for ``keyval_backend.Entry``; that alias must be the primary. Only
    reads that tolerate staleness may go to a replica, by
    ``OPTIONS["READ_DATABASE"]``. Django's error (the driver's behind it) is
    the ``__cause__``.
    """
