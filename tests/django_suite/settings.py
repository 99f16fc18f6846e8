"""Settings for Django's own cache tests run against KeyValCache.

The project's test settings (same ``KEYVAL_TEST_DB`` choice of database),
plus Django's ``cache`` test app, whose ``Poll`` model some of the tests
cache: the app is fetched for the installed Django when these settings load
(see ``fetch.py``). If it cannot be fetched, CI (``CI=true``) fails here,
before any test runs; elsewhere the suite's module skips with the reason,
kept in ``DJANGO_CACHE_TESTS_UNAVAILABLE``.

PostgreSQL and MariaDB test databases get their own name, so that this suite
and the main one can run at the same time on the same Python.
"""

from __future__ import annotations

import copy
import os
import sys

from tests.django_suite.fetch import FetchError, ensure_django_cache_tests
from tests.settings import *  # noqa: F403
from tests.settings import DATABASES as _BASE_DATABASES
from tests.settings import INSTALLED_APPS as _BASE_APPS
from tests.settings import KEYVAL_TEST_DB, RUN

DATABASES = copy.deepcopy(_BASE_DATABASES)
if KEYVAL_TEST_DB != "sqlite":  # SQLite's test file is already per process
    DATABASES["default"]["TEST"]["NAME"] = f"test_keyval_{RUN}_djsuite"

try:
    _suite_path = ensure_django_cache_tests()
except FetchError as exc:
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        raise
    DJANGO_CACHE_TESTS_UNAVAILABLE = str(exc)
    INSTALLED_APPS = list(_BASE_APPS)
else:
    DJANGO_CACHE_TESTS_UNAVAILABLE = ""
    if str(_suite_path) not in sys.path:
        sys.path.insert(0, str(_suite_path))
    INSTALLED_APPS = [*_BASE_APPS, "cache"]
