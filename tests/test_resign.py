"""SECRET_KEY rotation: values signed under an old key read through
SECRET_KEY_FALLBACKS, and ``keyval -c resign`` makes them independent of it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from keyval_backend import KeyVal, signing
from keyval_backend.exceptions import TamperedValue
from keyval_backend.models import Entry

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
OLD_KEY = "the-old-secret-key"
NEW_KEY = "the-new-secret-key"
VALUES: dict[str, Any] = {"dict": {"a": [1, 2]}, "tuple": (1, "x"), "text": "hello"}


def resign(*args: str) -> str:
    err = io.StringIO()
    call_command("keyval", "-c", "resign", *args, stderr=err)
    return err.getvalue()


@pytest.fixture
def rotated(db: None, use_caches: Callable[..., None], settings: Any) -> Any:
    """Values written under OLD_KEY by a pickling cache (signed rows are what
    is re-signed, whatever the suite's serializer), then NEW_KEY configured
    with OLD_KEY as a fallback; an int (stored unsigned) in another store."""
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "pickle"}})
    settings.SECRET_KEY = OLD_KEY
    for key, value in VALUES.items():
        KeyVal("s")[key] = value
    KeyVal("other")["o"] = ["other"]
    KeyVal("other")["n"] = 7
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    return settings


def test_fallback_reads_and_resign_makes_it_unneeded(rotated: Any) -> None:
    assert dict(KeyVal("s").items()) == VALUES
    assert resign("-n", "s") == "re-signed 3, already current 0, unreadable 0\n"
    assert resign("-n", "s") == "re-signed 0, already current 3, unreadable 0\n"
    rotated.SECRET_KEY_FALLBACKS = []
    assert dict(KeyVal("s").items()) == VALUES
    # Only store "s" was re-signed.
    with pytest.raises(TamperedValue):
        KeyVal("other")["o"]
    rotated.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert resign() == "re-signed 1, already current 3, unreadable 0\n"
    rotated.SECRET_KEY_FALLBACKS = []
    assert KeyVal("other")["o"] == ["other"]
    assert KeyVal("other")["n"] == 7


def test_tampered_row_reported_and_untouched(rotated: Any) -> None:
    row = Entry.objects.get(key=b":1:text")
    tampered = bytes(row.value)[:-2] + b"X."
    Entry.objects.filter(pk=row.pk).update(value=tampered)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 unreadable entry left as they are") as failure:
        call_command("keyval", "-c", "resign", "-n", "s", stderr=err)
    assert failure.value.returncode == 3
    assert "unreadable: store 's', key ':1:text': signature mismatch" in err.getvalue()
    assert "re-signed 2, already current 0, unreadable 1" in err.getvalue()
    assert bytes(Entry.objects.get(pk=row.pk).value) == tampered
    rotated.SECRET_KEY_FALLBACKS = []
    assert KeyVal("s")["dict"] == {"a": [1, 2]}


def test_value_written_again_meanwhile_is_kept(rotated: Any, monkeypatch: Any) -> None:
    """A row written between the read and the rewrite keeps its new value."""
    real_sign = signing.sign
    raced: list[bool] = []

    def sign_after_a_write(identity: bytes, tag: str, payload: bytes) -> bytes:
        if not raced:
            raced.append(True)
            KeyVal("s")["text"] = "newer"
        return real_sign(identity, tag, payload)

    monkeypatch.setattr(signing, "sign", sign_after_a_write)
    resign("-n", "s")
    assert KeyVal("s")["text"] == "newer"


def test_json_rows_are_unsigned_and_left_alone(
    db: None, use_caches: Callable[..., None], settings: Any
) -> None:
    """A json cache signs nothing, so a key rotation does not concern its
    rows: they read without any fallback, and there is nothing to re-sign."""
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "json"}})
    settings.SECRET_KEY = OLD_KEY
    KeyVal("s")["doc"] = {"a": [1, 2]}
    settings.SECRET_KEY = NEW_KEY
    assert KeyVal("s")["doc"] == {"a": [1, 2]}
    assert resign() == "re-signed 0, already current 0, unreadable 0\n"
    assert Entry.objects.get().format == "json.1"
