"""``manage.py keyval``: read and change the key-value stores from a shell.

The flags are those of django-keyval's command; the sub-commands, their
flags and their output live in :mod:`keyval_backend.cli`, which the
stand-alone ``keyval`` (:mod:`keyval_backend.standalone`) runs too.

Exit status: 0 done, 1 the key is missing, 2 a usage error, 3 the operation
failed (database error, unreadable value, bad dump line), 130 interrupted.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandParser

from ... import __version__
from ...cli import commands, options


class Command(BaseCommand):
    help = options.HELP
    # The checks of the caches (keyval.E001-E004) only: a project's unrelated
    # problems (URLs, templates) must not keep an operator from the data.
    requires_system_checks = (Tags.caches,)
    stealth_options = ("stdin",)

    def get_version(self) -> str:
        return __version__

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # No usage block: an error is one line, and --help opens with the synopsis.
        kwargs.setdefault("usage", argparse.SUPPRESS)
        kwargs.setdefault("formatter_class", options.HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        options.add_arguments(parser)

    def handle(self, *args: Any, **given: Any) -> None:
        commands.run(given, self.stdout, self.stderr, self.database_label)

    def database_label(self, alias: str) -> str:
        """How messages name a database (the stand-alone command names its file)."""
        return f"database {alias!r}"
