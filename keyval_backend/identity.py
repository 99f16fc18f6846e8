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
