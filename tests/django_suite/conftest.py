"""Collect Django's cache suite only under its own settings module.

It needs Django's ``cache`` test app installed (and its table created), which
``tests.django_suite.settings`` does and the project's main settings do not:
run it with ``--ds=tests.django_suite.settings``. Under other settings the
module is left out rather than failed, so the main run is unaffected. The
unpacked Django tests are never collected themselves.
"""

from __future__ import annotations

from django.conf import settings

collect_ignore_glob = ["_django_cache_tests/*"]
if not hasattr(settings, "DJANGO_CACHE_TESTS_UNAVAILABLE"):
    collect_ignore = ["test_django_cache_suite.py"]
