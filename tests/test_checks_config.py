"""Configuration: system checks, OPTIONS validation, the supplied default
cache, and migrations that match the model.

A mistake in CACHES should surface at start-up (``manage.py check``) or when
the cache is built, never as odd behaviour at the first read.
"""

from __future__ import annotations

import io
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

import keyval_backend.checks
from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache
from keyval_backend.models import Entry
from keyval_backend.sql import dialect_for

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
SQLITE_DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
POSTGRES_DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}}


class CustomKeyValCache(KeyValCache):
    """A project's subclass: still a KeyValCache for the checks."""


def made_key(key: str, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION other than Django's default."""
    return f"{version}/{key_prefix}/{key}"


def keyval_errors() -> list[str]:
    """The ids of the keyval checks that fail.

    The check functions are called directly: ``manage.py check`` also runs
    Django's own cache checks, which build every cache and so raise before
    any report for a configuration the constructor refuses.
    """
    messages = keyval_backend.checks.check_caches() + keyval_backend.checks.check_sqlite_version()
    return sorted(str(message.id) for message in messages)


def reported_by_manage_py_check() -> list[str]:
    """The keyval ids among everything ``manage.py check`` reports for caches."""
    return sorted(
        str(message.id)
        for message in checks.run_checks(tags=[checks.Tags.caches])
        if str(message.id).startswith("keyval.")
    )


def test_the_checks_are_registered_for_caches() -> None:
    registered = checks.registry.registry.get_checks()
    for check in (keyval_backend.checks.check_caches, keyval_backend.checks.check_sqlite_version):
        assert check in registered
        assert checks.Tags.caches in check.tags  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("caches_setting", "expected"),
    [
        ({"keyval": {"BACKEND": LOCMEM}}, ["keyval.E001"]),
        ({"x": {"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"DATABASE": "nowhere"}}}, ["keyval.E002"]),
        ({"x": {"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "yaml"}}}, ["keyval.E003"]),
        ({"x": {"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"PURGE_EVERY": -1}}}, ["keyval.E005"]),
        ({"keyval": {"BACKEND": KEYVAL_BACKEND}}, []),
    ],
    ids=["E001", "E002", "E003", "E005", "good"],
)
def test_manage_py_check_reports_them(
    use_caches: Callable[..., None], caches_setting: dict[str, Any], expected: list[str]
) -> None:
    use_caches(**caches_setting)
    assert reported_by_manage_py_check() == expected


# -- E001: CACHES["keyval"] is not a KeyValCache ------------------------------------------


@pytest.mark.parametrize(
    "backend", [LOCMEM, "no.such.Backend", "", "keyval_backend.cache.KEYVAL"], ids=repr
)
def test_e001_a_keyval_cache_of_another_backend(
    use_caches: Callable[..., None], backend: str
) -> None:
    use_caches(keyval={"BACKEND": backend})
    assert keyval_errors() == ["keyval.E001"]


@pytest.mark.parametrize("backend", [KEYVAL_BACKEND, f"{__name__}.CustomKeyValCache"])
def test_no_e001_for_keyvalcache_and_subclasses(
    use_caches: Callable[..., None], backend: str
) -> None:
    use_caches(keyval={"BACKEND": backend})
    assert keyval_errors() == []


def test_no_e001_when_the_app_supplies_the_cache(use_caches: Callable[..., None]) -> None:
    use_caches()
    assert keyval_errors() == []


# -- E002: OPTIONS["DATABASE"] names no database ---------------------------------------------


@pytest.mark.parametrize("alias", ["keyval", "other"])
def test_e002_an_unknown_database_alias(use_caches: Callable[..., None], alias: str) -> None:
    use_caches(**{alias: {"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"DATABASE": "nowhere"}}})
    assert keyval_errors() == ["keyval.E002"]


def test_e002_an_unknown_near_cache_listen_database(use_caches: Callable[..., None]) -> None:
    near_cache = {"LISTEN_DATABASE": "nowhere"}
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"NEAR_CACHE": near_cache}})
    assert keyval_errors() == ["keyval.E002"]


def test_e005_a_bad_near_cache_setting(use_caches: Callable[..., None]) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"NEAR_CACHE": {"MAX_ENTRIES": 0}}})
    assert keyval_errors() == ["keyval.E005"]


def test_no_e002_for_a_known_alias(use_caches: Callable[..., None]) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"DATABASE": "default"}})
    assert keyval_errors() == []


def test_other_backends_options_are_not_checked(use_caches: Callable[..., None]) -> None:
    use_caches(other={"BACKEND": LOCMEM, "OPTIONS": {"DATABASE": "nowhere", "SERIALIZER": 1}})
    assert keyval_errors() == []


# -- E003: OPTIONS["SERIALIZER"] does not load ------------------------------------------------


@pytest.mark.parametrize(
    "serializer", ["yaml", "no.such.Serializer", 42, f"{__name__}.CustomKeyValCache"], ids=repr
)
def test_e003_a_bad_serializer(use_caches: Callable[..., None], serializer: Any) -> None:
    use_caches(other={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": serializer}})
    assert keyval_errors() == ["keyval.E003"]


@pytest.mark.parametrize(
    "serializer", ["pickle", "json", "keyval_backend.serializers.JSONSerializer"]
)
def test_no_e003_for_good_serializers(use_caches: Callable[..., None], serializer: str) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": serializer}})
    assert keyval_errors() == []


def test_every_mistake_is_reported_at_once(use_caches: Callable[..., None]) -> None:
    use_caches(
        keyval={"BACKEND": LOCMEM},
        a={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"DATABASE": "nowhere"}},
        b={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "yaml"}},
    )
    assert keyval_errors() == ["keyval.E001", "keyval.E002", "keyval.E003"]


# -- E004: SQLite too old for RETURNING ------------------------------------------------------


def old_sqlite(version: tuple[int, int, int]) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        sqlite_version_info=version, sqlite_version=".".join(map(str, version))
    )


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_e004_sqlite_older_than_3_35(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DATABASES = SQLITE_DATABASES
    monkeypatch.setattr(keyval_backend.checks, "sqlite3", old_sqlite((3, 34, 1)))
    assert keyval_errors() == ["keyval.E004"]


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_no_e004_from_3_35(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DATABASES = SQLITE_DATABASES
    monkeypatch.setattr(keyval_backend.checks, "sqlite3", old_sqlite((3, 35, 0)))
    assert keyval_errors() == []


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_no_e004_without_a_sqlite_database(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DATABASES = POSTGRES_DATABASES
    monkeypatch.setattr(keyval_backend.checks, "sqlite3", old_sqlite((3, 7, 0)))
    assert keyval_errors() == []


def test_the_test_settings_pass_every_check() -> None:
    assert keyval_errors() == []
    assert reported_by_manage_py_check() == []
    call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


# -- OPTIONS -----------------------------------------------------------------------------------

# Every operation that reaches the database, each of which must refuse to run
# on a misconfigured cache.
OPERATIONS: dict[str, Callable[[KeyValCache], Any]] = {
    "get": lambda c: c.get("k"),
    "set": lambda c: c.set("k", 1),
    "add": lambda c: c.add("k", 1),
    "upsert": lambda c: c.upsert("k", 1),
    "delete": lambda c: c.delete("k"),
    "has_key": lambda c: c.has_key("k"),
    "incr": lambda c: c.incr("k"),
    "pop": lambda c: c.pop("k"),
    "touch": lambda c: c.touch("k"),
    "ttl": lambda c: c.ttl("k"),
    "get_many": lambda c: c.get_many(["k"]),
    "set_many": lambda c: c.set_many({"k": 1}),
    "delete_many": lambda c: c.delete_many(["k"]),
    "iter_keys": lambda c: list(c.iter_keys()),
    "iter_items": lambda c: list(c.iter_items()),
    "count": lambda c: c.count(),
    "clear": lambda c: c.clear(),
    "flush_all": lambda c: c.flush_all(),
    "stores": lambda c: c.stores(),
    "purge_expired": lambda c: c.purge_expired(),
    "store().get": lambda c: c.store("other").get("k"),
}

BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown MAX_ENTRY": ({"MAX_ENTRY": 1}, "Unknown KeyValCache OPTIONS"),
    "unknown lowercase": ({"serializer": "json"}, "Unknown KeyValCache OPTIONS"),
    "unknown TIMEOUT": ({"TIMEOUT": 1}, "Unknown KeyValCache OPTIONS"),
    "unknown empty": ({"": 1}, "Unknown KeyValCache OPTIONS"),
    "PURGE_EVERY -1": ({"PURGE_EVERY": -1}, "PURGE_EVERY"),
    "PURGE_EVERY str": ({"PURGE_EVERY": "10"}, "PURGE_EVERY"),
    "PURGE_EVERY float": ({"PURGE_EVERY": 1.5}, "PURGE_EVERY"),
    "PURGE_EVERY None": ({"PURGE_EVERY": None}, "PURGE_EVERY"),
    "PURGE_EVERY bool": ({"PURGE_EVERY": True}, "PURGE_EVERY"),
    "PURGE_BATCH -1": ({"PURGE_BATCH": -1}, "PURGE_BATCH"),
    "PURGE_BATCH str": ({"PURGE_BATCH": "10"}, "PURGE_BATCH"),
    "PURGE_BATCH 0": ({"PURGE_BATCH": 0}, "PURGE_BATCH"),
    "REVERSE_KEY_FUNCTION": ({"REVERSE_KEY_FUNCTION": "no.such.function"}, "REVERSE_KEY"),
}


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_are_reported_by_manage_py_check(
    use_caches: Callable[..., None], options: dict[str, Any], message: str
) -> None:
    # Building the cache does not raise, so that Django's own cache checks,
    # which build every cache, let this one be reported.
    use_caches(other={"BACKEND": KEYVAL_BACKEND, "OPTIONS": options})
    assert keyval_errors() == ["keyval.E005"]
    assert reported_by_manage_py_check() == ["keyval.E005"]
    assert message in str(keyval_backend.checks.check_caches()[0].msg)


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_make_the_cache_improperly_configured(
    db: None, options: dict[str, Any], message: str
) -> None:
    cache = KeyValCache("", {"OPTIONS": options})
    with pytest.raises(ImproperlyConfigured, match=message):
        cache.set("k", 1)
    with pytest.raises(ImproperlyConfigured, match=message):
        cache.get("k")


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_every_operation_refuses_a_misconfigured_cache(
    db: None, operation: Callable[[KeyValCache], Any]
) -> None:
    cache = KeyValCache("", {"OPTIONS": {"MAX_ENTRY": 1}})
    with pytest.raises(ImproperlyConfigured, match="MAX_ENTRY"):
        operation(cache)
    assert Entry.objects.count() == 0


LISTINGS = {name: OPERATIONS[name] for name in ("iter_keys", "iter_items", "count", "get")}


@pytest.mark.parametrize("operation", LISTINGS.values(), ids=LISTINGS.keys())
def test_a_misconfigured_cache_with_a_key_function_too(
    db: None, operation: Callable[[KeyValCache], Any]
) -> None:
    # Listing with a KEY_FUNCTION consults the options before the database.
    cache = KeyValCache("", {"KEY_FUNCTION": f"{__name__}.made_key", "OPTIONS": {"X": 1}})
    with pytest.raises(ImproperlyConfigured, match="Unknown KeyValCache OPTIONS"):
        operation(cache)


def test_a_misconfigured_keyval_cache_fails_the_facade(
    db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALISER": "json"}})
    with pytest.raises(ImproperlyConfigured, match="SERIALISER"):
        KeyVal("s").set("k", 1)
    with pytest.raises(ImproperlyConfigured, match="SERIALISER"):
        len(KeyVal("s"))


def test_every_known_option_is_accepted() -> None:
    cache = KeyValCache(
        "store",
        {
            "OPTIONS": {
                "MAX_ENTRIES": 10,
                "CULL_FREQUENCY": 2,
                "SERIALIZER": "json",
                "DATABASE": "default",
                "REVERSE_KEY_FUNCTION": "keyval_backend.identity.decode_name",
                "PURGE_EVERY": 0,
                "PURGE_BATCH": 5,
            }
        },
    )
    assert (cache.store_name, cache.database) == ("store", "default")


def test_empty_options_are_fine() -> None:
    assert KeyValCache("", {"OPTIONS": {}}).store_name == "default"
    assert KeyValCache("", {}).store_name == "default"


@pytest.mark.parametrize(
    ("params", "timeout"),
    [({}, None), ({"TIMEOUT": 5}, 5), ({"timeout": 7}, 7), ({"TIMEOUT": None}, None)],
    ids=["unset", "TIMEOUT", "timeout", "None"],
)
def test_the_default_timeout_is_forever_unless_configured(
    params: dict[str, Any], timeout: int | None
) -> None:
    assert KeyValCache("", params).default_timeout == timeout


def test_an_unsupported_database_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "vendor", "oracle")
    with pytest.raises(NotImplementedError, match="oracle"):
        dialect_for("default", "a_table_no_dialect_was_built_for")


# -- the supplied cache ------------------------------------------------------------------------


def test_the_app_supplies_a_keyval_cache(use_caches: Callable[..., None], settings: Any) -> None:
    use_caches()
    assert settings.CACHES["keyval"] == {"BACKEND": KEYVAL_BACKEND}
    assert isinstance(caches["keyval"], KeyValCache)
    assert caches["keyval"].store_name == "default"


def test_a_configured_keyval_cache_wins(use_caches: Callable[..., None]) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "LOCATION": "mine", "KEY_PREFIX": "p"})
    assert caches["keyval"].store_name == "mine"
    assert caches["keyval"].key_prefix == "p"


def test_the_package_imports_without_django_configured() -> None:
    # INSTALLED_APPS imports the package before settings are usable.
    code = (
        "import keyval_backend, keyval_backend.exceptions, keyval_backend.identity; "
        "print(keyval_backend.__version__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == keyval_backend.__version__


# -- migrations --------------------------------------------------------------------------------


def test_migrations_match_the_model(db: None) -> None:
    out = io.StringIO()
    call_command(
        "makemigrations", "keyval_backend", check=True, dry_run=True, stdout=out, stderr=out
    )
    assert "No changes detected" in out.getvalue()
