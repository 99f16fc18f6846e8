"""HMAC signatures that bind a stored value to its row and to ``SECRET_KEY``.

A pickle is code: whoever can write a row that the application unpickles can run
code in it. Every signed value is stored as ``HMAC-SHA256(key, row identity +
format tag + payload) || payload`` and verified before it is deserialized, so a
row written or copied by anyone without ``SECRET_KEY`` is refused.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

from django.conf import settings

from .exceptions import TamperedValue

SIGNATURE_SIZE = 32
_SALT = b"keyval_backend.signing.v1"


@lru_cache(maxsize=16)
def _derive(secret: str | bytes) -> bytes:
    """Derive the signing key from a secret, so the raw SECRET_KEY is used for
    nothing else than derivation (as django.core.signing salts its keys)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    return hmac.digest(secret, _SALT, "sha256")


def _message(identity: bytes, tag: str, payload: bytes) -> bytes:
    # identity is fixed-length (two hex digests); the NUL ends the tag.
    return identity + tag.encode("ascii") + b"\x00" + payload


def sign(identity: bytes, tag: str, payload: bytes) -> bytes:
    """Return the stored form of ``payload``: signature then payload."""
    key = _derive(settings.SECRET_KEY)
    return hmac.digest(key, _message(identity, tag, payload), "sha256") + payload


def verify(identity: bytes, tag: str, stored: bytes) -> bytes:
    """Return the payload of a signed value, or raise TamperedValue.

    Values signed under a key in ``SECRET_KEY_FALLBACKS`` still verify, so a
    key rotation does not make existing rows unreadable.
    """
    stored = bytes(stored)
    if len(stored) < SIGNATURE_SIZE:
        raise TamperedValue(f"signed value is truncated ({len(stored)} bytes)")
    signature, payload = stored[:SIGNATURE_SIZE], stored[SIGNATURE_SIZE:]
    message = _message(identity, tag, payload)
    if hmac.compare_digest(hmac.digest(_derive(settings.SECRET_KEY), message, "sha256"), signature):
        return payload
    # The fallbacks are read only after a mismatch: most reads never need them.
    for secret in getattr(settings, "SECRET_KEY_FALLBACKS", ()):
        if hmac.compare_digest(hmac.digest(_derive(secret), message, "sha256"), signature):
            return payload
    raise TamperedValue(
        "signature mismatch: the value was modified outside keyval_backend, "
        "or signed with a SECRET_KEY that is no longer configured"
    )
