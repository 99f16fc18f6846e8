"""Django's own generic cache backend tests, run against KeyValCache.

``BaseCacheTests`` is the suite every Django cache backend passes; it comes
from the source of the installed Django (see ``fetch.py``) and runs here the
way Django runs it for its database cache: every alias of
``caches_setting_for_tests()`` points at one store, so the prefix, version
and key-function tests see each other's rows, and the culling aliases count
the whole store. Run with ``--ds=tests.django_suite.settings``.
"""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import TestCase, override_settings
from freezegun import freeze_time

from keyval_backend.cache import KeyValCache
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry

if settings.DJANGO_CACHE_TESTS_UNAVAILABLE:
    pytest.skip(
        f"Django's cache tests are unavailable: {settings.DJANGO_CACHE_TESTS_UNAVAILABLE}",
        allow_module_level=True,
    )

import cache.tests as django_cache_tests
from cache.tests import BaseCacheTests, caches_setting_for_tests

pytestmark = pytest.mark.django_suite

STORE = "django suite"


class FastForwardTime:
    """Stands in for the ``time`` module inside Django's tests module.

    Django's suite waits for entries to expire with ``time.sleep``. Here a
    sleep moves a freezegun clock forward instead (frozen at the first sleep,
    ticking meanwhile), so expiry is tested as written, without the wait and
    without depending on the machine's speed. Everything else is ``time``.
    """

    def __init__(self) -> None:
        self._freezer: Any = None
        self._clock: Any = None

    def sleep(self, seconds: float) -> None:
        if self._clock is None:
            self._freezer = freeze_time(tick=True)
            self._clock = self._freezer.start()
        self._clock.tick(seconds)

    def stop(self) -> None:
        if self._freezer is not None:
            self._freezer.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@override_settings(
    CACHES=caches_setting_for_tests(
        BACKEND="keyval_backend.cache.KeyValCache",
        LOCATION=STORE,
    )
)
class KeyValCacheTests(BaseCacheTests, TestCase):
    """``BaseCacheTests`` on KeyValCache.

    A TestCase, like Django's locmem tests: its database cache tests need a
    TransactionTestCase only to create their table in ``setUp``, which the
    migration does here, and rolling back is quicker than a flush per test.
    """

    def setUp(self) -> None:
        super().setUp()
        clock = FastForwardTime()
        self.addCleanup(clock.stop)
        self.enterContext(mock.patch.object(django_cache_tests, "time", clock))

    def test_suite_runs_on_keyval_cache(self) -> None:
        """Not Django's: guards the set-up above, which a settings mix-up
        could otherwise turn into a run of the suite on another backend."""
        for alias in caches_setting_for_tests():
            backend = caches[alias]
            assert isinstance(backend, KeyValCache)
            assert backend.store_name == STORE
        caches["default"].set("probe", "value")
        rows = Entry.objects.filter(store_hash=name_hash(encode_name(STORE)))
        assert rows.count() == 1
