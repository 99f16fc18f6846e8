"""Row codec: a Python value <-> a row's ``format``, ``value`` and ``number``.

Integers that fit in a signed 64-bit column are stored natively in ``number``
with the tag ``int``, so ``incr``/``decr`` run in SQL; everything else goes
through the configured serializer and, if it is a signed one, a signature
bound to the row (see :mod:`keyval_backend.signing`).
"""

from __future__ import annotations

from typing import Any

from . import signing
from .exceptions import UnknownFormat, UnreadableValue, WrongTypeError
from .identity import name_hash
from .serializers import SAFE_FORMATS, BaseSerializer

INT_FORMAT = "int"
# The member format of a hash field: its UTF-8, never serialized (as in Redis,
# where django-redis passes fields through as they are).
FIELD_FORMAT = "field"
# What a row holds when it is not a plain value: its value columns are empty,
# and reading it as a value is Redis's WRONGTYPE.
KIND_FORMATS = {"hash": "a hash", "set": "a set", "zset": "a sorted set", "lock": "a lock"}
# The kinds that own rows of the Member table.
STRUCTURE_FORMATS = ("hash", "set", "zset")
# (format, payload, signature) of a member: the payload is what identifies it.
StoredMember = tuple[str, bytes, bytes]
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class RowCodec:
    """Encodes with one serializer; decodes every format this cache trusts."""

    def __init__(self, serializer: BaseSerializer) -> None:
        self.serializer = serializer
        self._readers: dict[str, BaseSerializer] = {tag: cls() for tag, cls in SAFE_FORMATS.items()}
        self._readers[serializer.format_tag] = serializer

    def encode(self, identity: bytes, value: Any) -> tuple[str, bytes, int | None]:
        """Return ``(format, value bytes, number)`` for a row.

        Raises whatever the serializer raises (``pickle.PicklingError``,
        ``TypeError`` for JSON), before any SQL runs, so a value that cannot be
        stored never replaces the one that is there.
        """
        if type(value) is int and INT64_MIN <= value <= INT64_MAX:
            return INT_FORMAT, b"", value
        serializer = self.serializer
        payload = serializer.dumps(value)
        if serializer.signed:
            payload = signing.sign(identity, serializer.format_tag, payload)
        return serializer.format_tag, payload, None

    def decode(self, identity: bytes, tag: str, data: bytes, number: int | None) -> Any:
        """Return the Python value of a row, verifying its signature first.

        Raises TamperedValue or UnknownFormat (both UnreadableValue) instead
        of guessing; nothing is deserialized before it is verified.
        """
        if tag == INT_FORMAT:
            return number
        serializer = self._readers.get(tag)
        if serializer is None:
            if tag in KIND_FORMATS:
                raise WrongTypeError(wrong_type_message(tag))
            raise UnknownFormat(
                f"stored format {tag!r} is not readable by this cache "
                f"(configured serializer: {self.serializer.format_tag!r})"
            )
        if serializer.signed:
            data = signing.verify(identity, tag, data)
        elif type(data) is not bytes:
            data = bytes(data)
        try:
            return serializer.loads(data)
        except Exception as exc:
            # A verified pickle of a class that no longer exists, a JSON row
            # edited by hand: unreadable, not a crash in the caller's code.
            raise UnreadableValue(
                f"stored {tag!r} value cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc

    def payload_loader(self, tag: str, data: bytes) -> tuple[Any, bytes]:
        """``(loads, payload)`` of a row :meth:`decode` has verified, so the
        near cache can deserialize a fresh copy on every hit without verifying
        the signature again."""
        serializer = self._readers[tag]
        payload = bytes(data)
        if serializer.signed:
            payload = payload[signing.SIGNATURE_SIZE :]
        return serializer.loads, payload

    # -- members of hashes, sets and sorted sets ---------------------------------

    def encode_member(self, identity: bytes, value: Any) -> StoredMember:
        """The stored form of a set or sorted set member: integers as their
        decimal digits, anything else serialized, with the signature of a
        signed format apart from the payload."""
        if type(value) is int and INT64_MIN <= value <= INT64_MAX:
            return INT_FORMAT, str(value).encode(), b""
        serializer = self.serializer
        payload = serializer.dumps(value)
        if not serializer.signed:
            return serializer.format_tag, payload, b""
        signed = signing.sign(identity, serializer.format_tag, payload)
        return serializer.format_tag, payload, signed[: signing.SIGNATURE_SIZE]

    def decode_member(self, identity: bytes, tag: str, payload: bytes, signature: bytes) -> Any:
        if type(payload) is not bytes:
            payload = bytes(payload)
        if tag == INT_FORMAT:
            return int(payload)
        if tag == FIELD_FORMAT:
            return payload.decode("utf-8", "surrogatepass")
        return self.decode(identity, tag, bytes(signature) + payload, None)


def member_hash(stored: StoredMember) -> str:
    """The lookup digest of a member: its format and payload (not its
    signature, which a key rotation may change)."""
    return name_hash(stored[0].encode() + b"\x00" + stored[1])


def wrong_type_message(tag: str, wanted: str | None = None) -> str:
    held = KIND_FORMATS.get(tag, "a plain value")
    wants = f" (the operation needs {KIND_FORMATS[wanted]})" if wanted else ""
    return (
        f"WRONGTYPE Operation against a key holding the wrong kind of value: it holds {held}{wants}"
    )
