"""Sphinx configuration.

autodoc imports keyval_backend's models, so Django is set up first, with the
test settings (SQLite, nothing to connect to at build time).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import keyval_backend  # noqa: E402

project = "keyval_backend"
author = "keyval_backend developers"
copyright = "2026, keyval_backend developers"
release = keyval_backend.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode", "myst_parser"]
# Fragments such as _benchmark_results.rst are included by pages, not pages themselves.
exclude_patterns = ["_build", "_*.rst"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Django's BaseCache docstrings describe Django's caches, not this backend.
autodoc_inherit_docstrings = False
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"keyval_backend {release}"
