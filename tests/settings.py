"""Test settings; the database comes from ``KEYVAL_TEST_DB``.

``sqlite`` (default, a file database), ``postgres`` or ``mariadb``, on the
services of a developer machine (see README.rst). Test databases are named
after the Python version, so that CI's runs on two Pythons do not collide.

``KEYVAL_TEST_SERIALIZER`` (``pickle``, the default, or ``json``) is the
serializer of ``CACHES["keyval"]`` and of every cache the fixtures of
``tests/conftest.py`` build, so that the whole suite runs under either; tests
marked ``pickle_only`` are skipped under ``json``.
"""

import os
import sys
import tempfile
from typing import Any

KEYVAL_TEST_DB = os.environ.get("KEYVAL_TEST_DB", "sqlite")
KEYVAL_TEST_SERIALIZER = os.environ.get("KEYVAL_TEST_SERIALIZER", "pickle")
RUN = os.environ.get("KEYVAL_TEST_RUN", f"py{sys.version_info.major}{sys.version_info.minor}")

DATABASES: dict[str, dict[str, Any]]
if KEYVAL_TEST_DB == "sqlite":
    _path = os.path.join(tempfile.gettempdir(), f"keyval_test_{RUN}_{os.getpid()}.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _path,
            "TEST": {"NAME": _path},
        }
    }
elif KEYVAL_TEST_DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("KEYVAL_PG_NAME", "test"),
            "USER": os.environ.get("KEYVAL_PG_USER", "root"),
            "HOST": os.environ.get("KEYVAL_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("KEYVAL_PG_PORT", "5432"),
            "TEST": {"NAME": f"test_keyval_{RUN}"},
        }
    }
elif KEYVAL_TEST_DB == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("KEYVAL_MYSQL_NAME", "test"),
            "USER": os.environ.get("KEYVAL_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("KEYVAL_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("KEYVAL_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("KEYVAL_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"NAME": f"test_keyval_{RUN}", "CHARSET": "utf8mb4"},
        }
    }
else:
    raise RuntimeError(
        f"KEYVAL_TEST_DB must be sqlite, postgres or mariadb, not {KEYVAL_TEST_DB!r}"
    )
# A second alias for the replica-routing tests (tests/test_read_database.py,
# tests/test_replica.py): a test mirror of the test database, so that a test
# can tell which alias each statement goes to. With KEYVAL_PG_REPLICA_PORT,
# the port of a hot standby of the PostgreSQL server (.ci/pg_topology.sh makes
# one), tests/test_replica.py points it at that standby.
DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
KEYVAL_PG_REPLICA_PORT = os.environ.get("KEYVAL_PG_REPLICA_PORT", "")
# KEYVAL_TEST_POOLER=1: KEYVAL_PG_PORT is PgBouncer's, in transaction pooling
# mode, where a server-side cursor (QuerySet.iterator(), which the admin uses)
# cannot outlive its transaction, as Django's docs say.
KEYVAL_TEST_POOLER = os.environ.get("KEYVAL_TEST_POOLER", "") == "1"
if KEYVAL_TEST_POOLER:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if KEYVAL_TEST_SERIALIZER not in {"pickle", "json"}:
    raise RuntimeError(
        f"KEYVAL_TEST_SERIALIZER must be pickle or json, not {KEYVAL_TEST_SERIALIZER!r}"
    )

SECRET_KEY = "keyval-backend-tests-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keyval_backend",
]
STATIC_URL = "static/"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "keyval": {
        "BACKEND": "keyval_backend.cache.KeyValCache",
        "OPTIONS": {"SERIALIZER": KEYVAL_TEST_SERIALIZER},
    },
}
