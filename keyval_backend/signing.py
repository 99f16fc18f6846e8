"""Signatures that bind a stored value to its row and to ``SECRET_KEY``.

A pickle is code: whoever can write a row that the application unpickles can run
code in it. Every signed value is stored as ``MAC(key, row identity + format tag
+ payload) || payload`` and verified before it is deserialized, so a row written
or copied by anyone without ``SECRET_KEY`` is refused.

The MAC is keyed BLAKE2b-256 (RFC 7693's keyed mode, a MAC by design): as
strong as HMAC-SHA256 and less than half its cost on the small values a store
mostly holds, which matters since every read of a pickle verifies one.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from hashlib import blake2b

from django.conf import settings

from .exceptions import TamperedValue

SIGNATURE_SIZE = 32
_SALT = b"keyval_backend.signing.v2"


@lru_cache(maxsize=16)
def _derive(secret: str | bytes) -> bytes:
    """Derive the signing key from a secret, so the raw SECRET_KEY is used for
    nothing else than derivation (as django.core.signing salts its keys)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    return hmac.digest(secret, _SALT, "sha256")


def _mac(key: bytes, identity: bytes, tag: str, payload: bytes) -> bytes:
    # identity is fixed-length (two hex digests); the NUL ends the tag.
    message = identity + tag.encode("ascii") + b"\x00" + payload
    return blake2b(message, key=key, digest_size=SIGNATURE_SIZE).digest()


def sign(identity: bytes, tag: str, payload: bytes) -> bytes:
    """Return the stored form of ``payload``: signature then payload."""
    return _mac(_derive(settings.SECRET_KEY), identity, tag, payload) + payload


def verify(identity: bytes, tag: str, stored: bytes) -> bytes:
    """Return the payload of a signed value, or raise TamperedValue.

    Values signed under a key in ``SECRET_KEY_FALLBACKS`` still verify, so a
    key rotation does not make existing rows unreadable.
    """
    if type(stored) is not bytes:  # a memoryview from the ORM on PostgreSQL
        stored = bytes(stored)
    if len(stored) < SIGNATURE_SIZE:
        raise TamperedValue(f"signed value is truncated ({len(stored)} bytes)")
    signature, payload = stored[:SIGNATURE_SIZE], stored[SIGNATURE_SIZE:]
    if hmac.compare_digest(_mac(_derive(settings.SECRET_KEY), identity, tag, payload), signature):
        return payload
    # The fallbacks are read only after a mismatch: most reads never need them.
    for secret in getattr(settings, "SECRET_KEY_FALLBACKS", ()):
        if hmac.compare_digest(_mac(_derive(secret), identity, tag, payload), signature):
            return payload
    raise TamperedValue(
        "signature mismatch: the value was modified outside keyval_backend, "
        "or signed with a SECRET_KEY that is no longer configured"
    )
