"""Row codec: a Python value <-> a row's ``format``, ``value`` and ``number``.

Integers that fit in a signed 64-bit column are stored natively in ``number``
with the tag ``int``, so ``incr``/``decr`` run in SQL; everything else goes
through the configured serializer and, if it is a signed one, a signature
bound to the row (see :mod:`keyval_backend.signing`).
"""

from __future__ import annotations

from typing import Any

from . import signing
from .exceptions import UnknownFormat, UnreadableValue
from .serializers import SAFE_FORMATS, BaseSerializer

INT_FORMAT = "int"
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
