"""Serializers: how a Python value becomes the bytes of a row, and back.

A serializer is a small class with ``format_tag``, ``signed``, ``dumps`` and
``loads``, chosen by ``OPTIONS["SERIALIZER"]`` (``"pickle"``, ``"json"`` or a
dotted path), in the manner of django-redis. Every row records the tag of the
serializer that wrote it, so a store can change serializer, or a serializer its
format, without a data migration: old rows keep reading as what they are.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

FORMAT_TAG_MAX_LENGTH = 64


class BaseSerializer:
    """The contract every serializer fulfils.

    ``signed`` serializers have their output signed with SECRET_KEY and verified
    before ``loads`` sees it; only formats that cannot run code may be unsigned.
    """

    format_tag: ClassVar[str]
    signed: ClassVar[bool] = True

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError


class PickleSerializer(BaseSerializer):
    """Any picklable object; signed, because unpickling runs code."""

    format_tag = "pickle.1"
    signed = True

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class JSONSerializer(BaseSerializer):
    """JSON-representable values only (tuples read back as lists); no pickle
    anywhere on the read path, so it needs no signature."""

    format_tag = "json.1"
    signed = False

    def dumps(self, value: Any) -> bytes:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
        try:
            return text.encode()
        except UnicodeEncodeError:
            # A lone surrogate is a valid str but not UTF-8: JSON's \u escapes
            # carry it (and json.loads gives it back), so the value is kept.
            return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


BUILTIN_SERIALIZERS: dict[str, type[BaseSerializer]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
}

# Formats any cache may read whatever it is configured to write: they cannot run code.
SAFE_FORMATS: dict[str, type[BaseSerializer]] = {JSONSerializer.format_tag: JSONSerializer}


def load_serializer(name: str) -> BaseSerializer:
    """Instantiate the serializer named by ``OPTIONS["SERIALIZER"]``.

    Raises ImproperlyConfigured with the reason when the name does not resolve
    to a class with ``dumps`` and ``loads``.
    """
    if not isinstance(name, str):
        raise ImproperlyConfigured(f"SERIALIZER must be a string, not {type(name).__name__}")
    cls: Any = BUILTIN_SERIALIZERS.get(name)
    if cls is None:
        if "." not in name:
            raise ImproperlyConfigured(
                f"Unknown SERIALIZER {name!r}: use 'pickle', 'json' or a dotted path to a class"
            )
        try:
            cls = import_string(name)
        except ImportError as exc:
            raise ImproperlyConfigured(f"Cannot import SERIALIZER {name!r}: {exc}") from exc
    if not (callable(getattr(cls, "dumps", None)) and callable(getattr(cls, "loads", None))):
        raise ImproperlyConfigured(f"SERIALIZER {name!r} must have dumps() and loads() methods")
    serializer = cls() if isinstance(cls, type) else cls
    tag = getattr(serializer, "format_tag", None) or f"custom:{name}"
    if len(tag) > FORMAT_TAG_MAX_LENGTH or not tag.isascii():
        raise ImproperlyConfigured(
            f"SERIALIZER {name!r} has a format_tag longer than {FORMAT_TAG_MAX_LENGTH} "
            "ASCII characters; set a shorter format_tag on the class"
        )
    if getattr(serializer, "format_tag", None) != tag:
        serializer.format_tag = tag
    if not hasattr(serializer, "signed"):
        serializer.signed = True
    return serializer  # type: ignore[no-any-return]
