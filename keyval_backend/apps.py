"""App configuration: the model's key type, system checks, a default cache."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save

DEFAULT_CACHE = {"BACKEND": "keyval_backend.cache.KeyValCache"}


def supply_default_cache(**kwargs: Any) -> None:
    """Give ``CACHES["keyval"]`` a KeyValCache on the default database when
    the project configures none, so ``KeyVal`` works with no settings at all;
    a configured ``CACHES["keyval"]`` always wins. Runs at start-up and again
    whenever a test overrides CACHES."""
    if kwargs and kwargs.get("setting") != "CACHES":
        return
    caches_setting = settings.CACHES
    if "keyval" not in caches_setting:
        caches_setting["keyval"] = dict(DEFAULT_CACHE)


class KeyValConfig(AppConfig):
    name = "keyval_backend"
    label = "keyval_backend"
    verbose_name = "Key-value store"
    # Pinned so that migrations do not change with DEFAULT_AUTO_FIELD.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the checks)
            near,
        )
        from .models import Entry

        supply_default_cache()
        setting_changed.connect(supply_default_cache, dispatch_uid="keyval_backend.default_cache")
        for signal in (post_save, post_delete):
            signal.connect(
                near.entry_written, sender=Entry, dispatch_uid="keyval_backend.near_cache"
            )
