"""What every sub-command of ``keyval`` is given: the options, the store, the
output streams, and the one-line errors it raises."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from django.core.cache import InvalidCacheBackendError, caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, OutputWrapper
from django.db import Error as DatabaseError
from django.db import connections

from .. import transfer
from ..cache import KeyValCache
from ..serializers import BaseSerializer, load_serializer
from .formats import format_value, plural
from .options import FAILED, MISSING, usage_error
from .progress import NoProgress, Progress


class Session:
    """One run of one sub-command: ``options`` as argparse left them, the
    backend bound to the store (``view``), and how to write to the user.
    ``label`` names a database alias in messages (the stand-alone command
    names its file instead)."""

    def __init__(
        self,
        options: dict[str, Any],
        stdout: OutputWrapper,
        stderr: OutputWrapper,
        label: Callable[[str], str],
    ) -> None:
        self.options = options
        self.stdout, self.stderr = stdout, stderr
        self.database_label = label
        self.verbosity: int = options["verbosity"]
        try:
            self.backend = _backend(options["cache"], options["database"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=FAILED) from exc
        self.store_name: str = (
            self.backend.store_name if options["store"] is None else options["store"]
        )
        self.view = self.backend.facade_view(self.store_name)

    @property
    def key(self) -> str:
        """``-k``: the key of a single-key sub-command."""
        key: str = self.options["key"]
        return key

    def serializer(self) -> BaseSerializer:
        options = caches.settings[self.options["cache"]].get("OPTIONS") or {}
        return load_serializer(options.get("SERIALIZER", "pickle"))

    # -- failures -------------------------------------------------------------------

    def database_error(self, exc: DatabaseError) -> CommandError:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if transfer.TABLE in text:
            text += "; has migrate been run on it?"
        return CommandError(
            f"{self.database_label(self.backend.database)}: {text}", returncode=FAILED
        )

    def missing(self) -> CommandError:
        return CommandError(
            f"key {self.key!r} not found in store {self.store_name!r}",
            returncode=MISSING,
        )

    # -- output -----------------------------------------------------------------------

    def emit(self, text: str) -> None:
        """One line of output (stdout), ended by a newline even if ``text``
        ends with one itself, which OutputWrapper.write would not add."""
        self.stdout.write(text + "\n", ending="")

    def say(self, message: str) -> None:
        """A message for the human (stderr), silenced by -v 0."""
        if self.verbosity >= 1:
            self.stderr.write(message, style_func=str)

    def print_value(self, value: Any) -> None:
        """A string as it is, so that ``$(keyval -c get ...)`` gives back what
        ``-V`` stored; any other value as JSON if it reads back exactly from
        it, else its repr. With --json, a string too is JSON (quoted); with
        --raw, bytes are written as they are."""
        if self.options.get("raw") and isinstance(value, bytes):
            self.stdout.flush()
            buffer = getattr(self.stdout, "buffer", None)
            if buffer is not None:
                buffer.write(value)
                buffer.flush()
                return
            value = value.decode("utf-8", "surrogateescape")
        if isinstance(value, str) and not self.options.get("json"):
            self.emit(value)
        else:
            self.emit(format_value(value))

    def conclude(
        self,
        summary: str,
        failures: int,
        outcome: str,
        failure: tuple[str, str] | str = ("unreadable entry", "unreadable entries"),
    ) -> None:
        """Say ``summary``; then, if ``failures`` (entries, lines or rows) were
        not done, fail with status 3: ``"2 bad lines skipped"``."""
        self.say(summary)
        if failures:
            singular, plural_form = (failure, None) if isinstance(failure, str) else failure
            raise CommandError(
                f"{plural(failures, singular, plural_form)} {outcome}", returncode=FAILED
            )

    def progress(self, label: str, total: Callable[[], int | None], to_stdout: bool) -> Progress:
        """A progress bar if stderr is a terminal that the command's output
        does not also go to; otherwise one that draws nothing. ``total`` is
        only called (it may cost a query) when the bar is shown."""
        shown = (
            self.verbosity >= 1
            and self.stderr.isatty()
            and not (to_stdout and self.stdout.isatty())
        )
        return Progress(self.stderr, label, total()) if shown else NoProgress()

    def skipper(self, bar: Progress) -> Callable[[Exception], None] | None:
        """With --continue-on-error, what reports each bad entry, line or row
        that is skipped (taking the progress bar off the screen first); without it, None,
        so that the first one aborts the whole operation."""
        if not self.options["continue_on_error"]:
            return None

        def skip(exc: Exception) -> None:
            bar.clear()
            self.stderr.write(f"skipped {exc}")

        return skip

    def confirm(self, question: str) -> bool:
        stdin: IO[str] = self.options.get("stdin") or sys.stdin
        if not stdin.isatty():
            raise usage_error(
                f"-c {self.options['command']} asks for confirmation, and stdin is not a "
                "terminal: pass --yes (or --noinput)"
            )
        self.stderr.write(question, style_func=str, ending="")
        self.stderr.flush()
        return stdin.readline().strip().lower() in ("y", "yes")


def _backend(alias: str, database: str | None) -> KeyValCache:
    """The KeyValCache of ``alias``, on ``database`` when one is given."""
    try:
        backend = caches[alias]
    except InvalidCacheBackendError:
        raise usage_error(
            f"no cache {alias!r} in CACHES (configured: {', '.join(caches.settings)})"
        ) from None
    if not isinstance(backend, KeyValCache):
        raise usage_error(f"cache {alias!r} is not a keyval_backend.cache.KeyValCache")
    if database is None or database == backend.database:
        return backend
    if database not in connections.settings:
        raise usage_error(
            f"no database {database!r} in DATABASES (configured: {', '.join(connections.settings)})"
        )
    # The alias's configuration with another DATABASE, built as Django's
    # CacheHandler builds a backend.
    params = dict(caches.settings[alias])
    del params["BACKEND"]
    location = params.pop("LOCATION", "")
    params["OPTIONS"] = {**(params.get("OPTIONS") or {}), "DATABASE": database}
    return type(backend)(location, params)
