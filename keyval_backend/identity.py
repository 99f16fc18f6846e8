"""How a store name and a key become the identity of a row.

Any ``str`` is a valid name, lone surrogates included: names are stored as
UTF-8 with ``surrogatepass`` and looked up by a BLAKE2b-128 hex digest, which
every database compares exactly, whatever its collation.
"""

from __future__ import annotations

from hashlib import blake2b


def encode_name(name: str) -> bytes:
    """The exact bytes stored for a store name or key."""
    return name.encode("utf-8", "surrogatepass")


def decode_name(data: bytes | memoryview) -> str:
    return bytes(data).decode("utf-8", "surrogatepass")


def printable(name: str) -> str:
    """A store name or key as a page, a log or a terminal can show it: any
    ``str`` is a valid name, but a lone surrogate cannot be sent as UTF-8 and
    a NUL would not show (nor be stored by PostgreSQL), so both are escaped."""
    text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def name_hash(data: bytes) -> str:
    """The 32-character lookup digest of encoded name bytes."""
    return blake2b(data, digest_size=16).hexdigest()


def prefix_upper_bound(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``.

    UTF-8 never contains the byte 0xFF, so ``prefix + b"\\xff"`` bounds every
    encoded name that starts with ``prefix``; ``key >= prefix AND key < bound``
    is a prefix match that needs no LIKE escaping.
    """
    return prefix + b"\xff"
