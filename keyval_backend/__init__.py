"""keyval_backend: a persistent key-value store in the Django project's own database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_names

__version__ = "0.1.0"
__all__ = ["KeyVal", "__version__"]

if TYPE_CHECKING:
    from .facade import KeyVal


# Lazy, so that ``import keyval_backend`` works before Django's apps are ready
# (INSTALLED_APPS imports it) and without Django configured at all.
__getattr__ = lazy_names(__name__, {"KeyVal": "keyval_backend.facade"})
