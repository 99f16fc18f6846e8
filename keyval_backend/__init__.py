"""keyval_backend: a persistent key-value store in the Django project's own database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["KeyVal", "__version__"]

if TYPE_CHECKING:
    from .facade import KeyVal


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import keyval_backend`` works before Django's apps are
    # ready (INSTALLED_APPS imports it) and without Django configured at all.
    if name == "KeyVal":
        from .facade import KeyVal

        return KeyVal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
