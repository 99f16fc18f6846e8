"""``manage.py keyval``: read and change the key-value stores from a shell.

The flags are those of django-keyval's command (``-c``, ``-n``, ``-k``, capital
``-V`` because ``-v`` is Django's verbosity), which users' scripts call. The
same command runs stand-alone as ``keyval`` (:mod:`keyval_backend.standalone`).

Exit status: 0 done, 1 the key is missing, 2 a usage error, 3 the operation
failed (database error, unreadable value, bad dump line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.checks import Tags
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
    OutputWrapper,
)
from django.db import Error as DatabaseError
from django.db import connections

from ... import __version__, legacy, transfer
from ... import resign as resigning
from ...cache import KeyValCache
from ...exceptions import UnreadableValue
from ...patterns import glob_escape
from ...serializers import BaseSerializer, load_serializer

MISSING = 1
USAGE = 2
FAILED = 3
INTERRUPTED = 130
SIGPIPE_STATUS = 141  # 128 + SIGPIPE, as a shell reports a reader that went away
# Expired rows deleted per statement by ``-c purge``: bounded, so that no
# statement holds locks for long on a large table.
PURGE_BATCH = 1000
_ABSENT: Any = object()


@dataclass(frozen=True)
class Spec:
    """What a ``-c`` command takes: ``key`` and ``value`` are "required",
    "optional" or None (refused), ``store`` whether ``-n`` applies, ``flags``
    the other options it accepts (by dest)."""

    summary: str
    key: str | None = None
    value: str | None = None
    store: bool = True
    flags: frozenset[str] = frozenset()


def _spec(summary: str, *flags: str, **kwargs: Any) -> Spec:
    return Spec(summary, flags=frozenset(flags), **kwargs)


COMMANDS: dict[str, Spec] = {
    "set": _spec("store -V VALUE under -k KEY", "json", "timeout", key="required",
                 value="required"),
    "get": _spec("print the value of -k KEY", "raw", key="required"),
    "del": _spec("delete -k KEY", key="required"),
    "exists": _spec("print true or false (exit status 0 or 1)", key="required"),
    "pop": _spec("print the value of -k KEY and delete it", "raw", key="required"),
    "incr": _spec("add -V DELTA (an integer, default 1) to -k KEY, print the sum",
                  key="required", value="optional"),
    "ttl": _spec("print the seconds -k KEY has left (null: never expires)", key="required"),
    "expire": _spec("make -k KEY expire in --timeout SECONDS", "timeout", key="required"),
    "persist": _spec("make -k KEY never expire", key="required"),
    "list": _spec("print the keys of the store (--prefix, --values)", "prefix", "values"),
    "stores": _spec("print every store with its number of entries", store=False),
    "flush": _spec("delete every entry of the store (asks first unless --yes)", "yes"),
    "purge": _spec("delete the expired entries of every store", store=False),
    "dump": _spec("write the store (without -n: every store) as JSON Lines", "output",
                  "continue_on_error"),
    "load": _spec("read JSON Lines from --input FILE or stdin", "input", "replace",
                  "continue_on_error"),
    "import-django-keyval": _spec("copy django-keyval 0.1.x's table (unpickles it: --yes)",
                                  "table", "replace", "yes", "continue_on_error", store=False),
    "resign": _spec("re-sign the store's values (without -n: every store) with SECRET_KEY"),
}  # fmt: skip

# Options whose use with a command that ignores them is a mistake, by dest.
FLAG_NAMES = {
    "store": "-n/--store",
    "key": "-k/--key",
    "value": "-V/--value",
    "json": "--json",
    "timeout": "--timeout",
    "raw": "--raw",
    "prefix": "--prefix",
    "values": "--values",
    "yes": "--yes",
    "output": "--output",
    "input": "--input",
    "replace": "--replace",
    "continue_on_error": "--continue-on-error",
    "table": "--table",
}

SYNOPSIS = """\
Read and change the key-value stores of keyval_backend.

  keyval -c set -n STORE -k KEY -V VALUE [--json] [--timeout SECONDS]
  keyval -c get -n STORE -k KEY [--raw]
  keyval -c dump [-n STORE] [--output FILE]    keyval -c load [--input FILE] [--replace]

commands (-c):
{commands}

-n defaults to the store of the cache (--cache, default "keyval").
Exit status: 0 done, 1 missing key, 2 usage error, 3 failed."""


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, and the synopsis as written."""


def seconds(text: str) -> float:
    """argparse type of --timeout: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE)


class Progress:
    """A one-line progress bar redrawn in place on an interactive stderr, at
    most ten times a second."""

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, label: str, total: int | None) -> None:
        self.stream, self.label, self.total = stream, label, total
        self.drawn = 0.0
        self.width = 0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.drawn < 0.1:
            return
        self.drawn = now
        if self.total:
            filled = min(self.WIDTH, self.WIDTH * done // self.total)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"{self.label} [{bar}] {min(100, 100 * done // self.total):3d}% "
            text += f"{done:,}/{self.total:,}"
        else:
            text = f"{self.label} {done:,}"
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text.ljust(self.width), style_func=str, ending="")
        self.stream.flush()

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r", style_func=str, ending="")
            self.stream.flush()


class Command(BaseCommand):
    help = SYNOPSIS.format(
        commands="\n".join(
            # A name too long for the column gets a line of its own.
            f"  {name:<8} {spec.summary}"
            if len(name) <= 8
            else f"  {name}\n  {'':8} {spec.summary}"
            for name, spec in COMMANDS.items()
        )
    )
    # The checks of the caches (keyval.E001-E004) only: a project's unrelated
    # problems (URLs, templates) must not keep an operator from the data.
    requires_system_checks = (Tags.caches,)
    stealth_options = ("stdin",)

    def get_version(self) -> str:
        return __version__

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # No usage block: an error is one line, and --help opens with the synopsis.
        kwargs.setdefault("usage", argparse.SUPPRESS)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-c",
            "--command",
            required=True,
            choices=list(COMMANDS),
            metavar="COMMAND",
            help=f"What to do: {', '.join(COMMANDS)}.",
        )
        parser.add_argument(
            "-n",
            "--store",
            "--store_name",
            dest="store",
            metavar="STORE",
            help="The store (default: that of the cache, usually 'default').",
        )
        parser.add_argument("-k", "--key", help="The key.")
        parser.add_argument(
            "-V",
            "--value",
            help="The value, stored as the string given (with --json: parsed as JSON); "
            "for incr, the delta.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Parse -V as JSON (numbers, lists, objects)."
        )
        parser.add_argument(
            "--timeout",
            type=seconds,
            metavar="SECONDS",
            help="Expire the key after SECONDS (set: default from the cache's TIMEOUT).",
        )
        parser.add_argument(
            "--raw",
            action="store_true",
            help="get/pop: print a string as it is, and bytes as bytes, instead of JSON.",
        )
        parser.add_argument("--prefix", help="list: only the keys that start with PREFIX.")
        parser.add_argument(
            "--values", action="store_true", help="list: print KEY<TAB>VALUE lines."
        )
        parser.add_argument(
            "--yes",
            "--noinput",
            dest="yes",
            action="store_true",
            help="flush: do not ask for confirmation; import-django-keyval: the old table "
            "is trusted (it is unpickled).",
        )
        parser.add_argument("--output", metavar="FILE", help="dump: write to FILE, not stdout.")
        parser.add_argument("--input", metavar="FILE", help="load: read FILE, not stdin.")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="load, import-django-keyval: overwrite keys that exist (default: keep them).",
        )
        parser.add_argument(
            "--continue-on-error",
            action="store_true",
            help="load: skip bad lines and load the rest; dump: skip unreadable entries; "
            "import-django-keyval: skip bad rows.",
        )
        parser.add_argument(
            "--table",
            metavar="NAME",
            help=f"import-django-keyval: the old table (default: {legacy.OLD_TABLE}).",
        )
        parser.add_argument(
            "--cache",
            default="keyval",
            metavar="ALIAS",
            help="The CACHES alias of a KeyValCache (default: keyval).",
        )
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            help="The DATABASES alias (default: the cache's).",
        )

    # -- plumbing -----------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["command"]
        spec = COMMANDS[name]
        _check_options(name, spec, options)
        self.options = options
        self.verbosity: int = options["verbosity"]
        try:
            self.backend = self._backend(options["cache"], options["database"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=FAILED) from exc
        self.store_name: str = (
            self.backend.store_name if options["store"] is None else options["store"]
        )
        self.view = self.backend.facade_view(self.store_name)
        run: Callable[[], None] = getattr(self, f"do_{name.replace('-', '_')}")
        try:
            run()
        except DatabaseError as exc:
            raise self.database_error(exc) from exc
        except UnreadableValue as exc:
            raise CommandError(f"unreadable value: {exc}", returncode=FAILED) from exc
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=FAILED) from exc
        except UnicodeEncodeError as exc:
            raise CommandError(
                f"cannot write {exc.object[exc.start : exc.end]!r} in the output's "
                f"encoding {exc.encoding}; use --output FILE or PYTHONIOENCODING=utf-8",
                returncode=FAILED,
            ) from exc
        except KeyboardInterrupt:
            raise CommandError("interrupted", returncode=INTERRUPTED) from None
        except BrokenPipeError:
            # The reader of stdout went away (``keyval -c list | head``): stop
            # quietly, as a shell tool does on SIGPIPE, and point stdout at
            # /dev/null so that flushing it at exit does not fail again.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(SIGPIPE_STATUS) from None

    def _backend(self, alias: str, database: str | None) -> KeyValCache:
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
                f"no database {database!r} in DATABASES "
                f"(configured: {', '.join(connections.settings)})"
            )
        # The alias's configuration with another DATABASE, built as Django's
        # CacheHandler builds a backend.
        params = dict(caches.settings[alias])
        del params["BACKEND"]
        location = params.pop("LOCATION", "")
        params["OPTIONS"] = {**(params.get("OPTIONS") or {}), "DATABASE": database}
        return type(backend)(location, params)

    def _serializer(self) -> BaseSerializer:
        options = caches.settings[self.options["cache"]].get("OPTIONS") or {}
        return load_serializer(options.get("SERIALIZER", "pickle"))

    def database_label(self, alias: str) -> str:
        """How messages name a database (the stand-alone command names its file)."""
        return f"database {alias!r}"

    def database_error(self, exc: DatabaseError) -> CommandError:
        alias = self.backend.database
        text = " ".join(str(exc).split()) or type(exc).__name__
        if transfer.TABLE in text:
            text += "; has migrate been run on it?"
        return CommandError(f"{self.database_label(alias)}: {text}", returncode=FAILED)

    def missing(self) -> CommandError:
        return CommandError(
            f"key {self.options['key']!r} not found in store {self.store_name!r}",
            returncode=MISSING,
        )

    def emit(self, text: str) -> None:
        """One line of output (stdout), ended by a newline even if ``text``
        ends with one itself, which OutputWrapper.write would not add."""
        self.stdout.write(text + "\n", ending="")

    def say(self, message: str) -> None:
        """A message for the human (stderr), silenced by -v 0."""
        if self.verbosity >= 1:
            self.stderr.write(message, style_func=str)

    def progress(self, label: str, total: Callable[[], int | None], to_stdout: bool) -> Progress:
        """A progress bar if stderr is a terminal that the command's output
        does not also go to; otherwise one that draws nothing. ``total`` is
        only called (it may cost a query) when the bar is shown."""
        shown = (
            self.verbosity >= 1
            and self.stderr.isatty()
            and not (to_stdout and self.stdout.isatty())
        )
        return Progress(self.stderr, label, total()) if shown else _NoProgress()

    def skipper(self, bar: Progress) -> Callable[[Exception], None] | None:
        """With --continue-on-error, what reports each bad entry, line or row
        that is skipped (clearing the progress bar first); without it, None,
        so that the first one aborts the whole operation."""
        if not self.options["continue_on_error"]:
            return None

        def skip(exc: Exception) -> None:
            bar.close()
            self.stderr.write(f"skipped {exc}")

        return skip

    def print_value(self, value: Any) -> None:
        """JSON if the value reads back exactly from it, else repr; with
        --raw, strings as they are and bytes as bytes."""
        if self.options.get("raw") and isinstance(value, bytes):
            self.stdout.flush()
            buffer = getattr(self.stdout, "buffer", None)
            if buffer is not None:
                buffer.write(value)
                buffer.flush()
                return
            value = value.decode("utf-8", "surrogateescape")
        if self.options.get("raw") and isinstance(value, str):
            self.emit(value)
        else:
            self.emit(format_value(value))

    # -- the commands --------------------------------------------------------------

    def do_set(self) -> None:
        value: Any = self.options["value"]
        if self.options["json"]:
            value = parse_json(value)
        timeout = self.options["timeout"]
        new = self.view.upsert(
            self.options["key"], value, DEFAULT_TIMEOUT if timeout is None else timeout
        )
        verb = "Created" if new else "Updated"
        self.say(f"{verb} key {self.options['key']!r} in store {self.store_name!r}.")

    def do_get(self) -> None:
        value = self.view.get(self.options["key"], _ABSENT)
        if value is _ABSENT:
            raise self.missing()
        self.print_value(value)

    def do_del(self) -> None:
        if not self.view.delete(self.options["key"]):
            raise self.missing()
        self.say(f"Deleted key {self.options['key']!r} from store {self.store_name!r}.")

    def do_exists(self) -> None:
        found = self.view.has_key(self.options["key"])
        self.emit("true" if found else "false")
        if not found:
            raise self.missing()

    def do_pop(self) -> None:
        value = self.view.pop(self.options["key"], _ABSENT)
        if value is _ABSENT:
            raise self.missing()
        self.print_value(value)

    def do_incr(self) -> None:
        delta = parse_delta(self.options["value"])
        try:
            value = self.view.incr(self.options["key"], delta)
        except ValueError:
            raise self.missing() from None
        except TypeError as exc:
            raise CommandError(
                f"cannot add {delta!r} to key {self.options['key']!r} of store "
                f"{self.store_name!r}: {exc}",
                returncode=FAILED,
            ) from None
        self.emit(format_value(value))

    def do_ttl(self) -> None:
        try:
            left = self.view.expires_in(self.options["key"])
        except KeyError:
            raise self.missing() from None
        self.emit("null" if left is None else format_value(round(left, 3)))

    def do_expire(self) -> None:
        timeout = self.options["timeout"]
        if not self.view.touch(self.options["key"], timeout):
            raise self.missing()
        self.say(
            f"Key {self.options['key']!r} of store {self.store_name!r} expires in "
            f"{timeout:g} seconds."
        )

    def do_persist(self) -> None:
        if not self.view.touch(self.options["key"], None):
            raise self.missing()
        self.say(f"Key {self.options['key']!r} of store {self.store_name!r} never expires now.")

    def do_list(self) -> None:
        prefix = self.options["prefix"] or ""
        pairs: Iterable[tuple[str, Any]]
        if self.options["values"]:
            pairs = self.view.iter_items(prefix)
        else:
            pairs = ((key, None) for key in self.view.iter_keys(glob_escape(prefix) + "*"))
        # The count is of every key of the store: a total only without --prefix.
        bar = self.progress("list", lambda: None if prefix else self.view.count(), True)
        try:
            for done, (key, value) in enumerate(pairs, 1):
                self.emit(f"{key}\t{format_value(value)}" if self.options["values"] else key)
                bar(done)
        finally:
            bar.close()

    def do_stores(self) -> None:
        for name, count in sorted(self.backend.stores().items()):
            self.emit(f"{name}\t{count}")

    def do_flush(self) -> None:
        count = self.view.count()
        if not self.options["yes"] and not self.confirm(
            f"Delete every entry of store {self.store_name!r} ({count} keys) in "
            f"{self.database_label(self.backend.database)}? [y/N] "
        ):
            self.say("Flush cancelled.")
            return
        self.view.clear()
        self.say(f"Flushed store {self.store_name!r}.")

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

    def do_purge(self) -> None:
        database = self.backend.database
        bar = self.progress("purge", lambda: _count_expired(database), False)
        purged = 0
        try:
            while True:
                deleted = self.backend.purge_expired(limit=PURGE_BATCH)
                purged += deleted
                bar(purged)
                if deleted < PURGE_BATCH:
                    break
        finally:
            bar.close()
        self.say(f"Purged {plural(purged, 'expired entry', 'expired entries')}.")

    def do_dump(self) -> None:
        store = self.options["store"]
        database = self.backend.database
        output = self.options["output"]
        to_stdout = output in (None, "-")
        bar = self.progress("dump", lambda: transfer.count_live(database, store), to_stdout)

        on_unreadable = self.skipper(bar)
        try:
            if to_stdout:
                result = transfer.dump(
                    lambda line: self.stdout.write(line, ending=""),
                    database=database,
                    store=store,
                    serializer=self._serializer(),
                    on_unreadable=on_unreadable,
                    progress=bar,
                )
            else:
                with _replacing(output) as file:
                    result = transfer.dump(
                        file.write,
                        database=database,
                        store=store,
                        serializer=self._serializer(),
                        on_unreadable=on_unreadable,
                        progress=bar,
                    )
        finally:
            bar.close()
        where = "" if to_stdout else f" to {output}"
        self.say(f"Dumped {plural(result.entries, 'entry', 'entries')}{where}.")
        if result.unreadable:
            raise CommandError(
                f"{plural(result.unreadable, 'unreadable entry', 'unreadable entries')} left out",
                returncode=FAILED,
            )

    def do_load(self) -> None:
        path = self.options["input"]
        if path in (None, "-"):
            stdin = self.options.get("stdin") or sys.stdin
            source: Any = getattr(stdin, "buffer", stdin)
            self._load(source, lambda: None)
            return
        try:
            file = open(path, "rb")  # noqa: SIM115 (closed below, after the load)
        except OSError as exc:
            raise usage_error(f"cannot read {path}: {exc.strerror}") from None
        with file:
            self._load(file, lambda: _count_lines(file))

    def _load(self, source: Iterable[str | bytes], total: Callable[[], int | None]) -> None:
        bar = self.progress("load", total, False)

        on_bad_line = self.skipper(bar)
        try:
            result = transfer.load(
                source,
                database=self.backend.database,
                serializer=self._serializer(),
                replace=self.options["replace"],
                store=self.options["store"],
                on_bad_line=on_bad_line,
                progress=bar,
            )
        except transfer.BadLine as exc:
            raise CommandError(f"{exc}; nothing was loaded", returncode=FAILED) from None
        finally:
            bar.close()
        details = _counts(
            (result.new, "new"),
            (result.replaced, "replaced"),
            (result.kept, "kept (already there; --replace overwrites)"),
            (result.expired, "expired"),
            (result.other_stores, "of other stores"),
        )
        self.say(f"Loaded {plural(result.written, 'entry', 'entries')}: {details}.")
        if result.bad_lines:
            raise CommandError(f"{plural(result.bad_lines, 'bad line')} skipped", returncode=FAILED)

    def do_import_django_keyval(self) -> None:
        table = self.options["table"] or legacy.OLD_TABLE
        if not self.options["yes"]:
            raise usage_error(
                "-c import-django-keyval unpickles every row of the old table, which runs "
                "code: pass --yes if that table is trusted"
            )
        database = self.backend.database
        bar = self.progress("import", lambda: None, False)

        on_bad_row = self.skipper(bar)
        try:
            result = legacy.import_table(
                self.backend,
                database=database,
                table=table,
                replace=self.options["replace"],
                on_bad_row=on_bad_row,
                progress=bar,
            )
        except legacy.BadRow as exc:
            raise CommandError(f"{exc}; nothing was imported", returncode=FAILED) from None
        finally:
            bar.close()
        details = _counts(
            (result.imported, "new"),
            (result.replaced, "replaced"),
            (result.skipped, "skipped (already there; --replace overwrites)"),
        )
        written = result.imported + result.replaced
        self.say(f"Imported {plural(written, 'entry', 'entries')} from {table}: {details}.")
        if result.bad_rows:
            raise CommandError(f"{plural(result.bad_rows, 'bad row')} skipped", returncode=FAILED)

    def do_resign(self) -> None:
        store = self.options["store"]
        bar = self.progress("resign", lambda: None, False)

        def report(message: str) -> None:
            bar.close()
            self.stderr.write(f"unreadable: {message}")

        try:
            result = resigning.resign(
                self.backend.database, store, on_unreadable=report, progress=bar
            )
        finally:
            bar.close()
        self.say(
            f"re-signed {result.resigned}, already current {result.current}, "
            f"unreadable {result.unreadable}"
        )
        if result.unreadable:
            raise CommandError(
                f"{plural(result.unreadable, 'unreadable entry', 'unreadable entries')} "
                "left as they are",
                returncode=FAILED,
            )


class _NoProgress(Progress):
    """The progress bar of a command whose stderr is not a terminal."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, done: int) -> None:
        return None


def _check_options(name: str, spec: Spec, options: dict[str, Any]) -> None:
    """Refuse options the command does not take, and missing ones it needs:
    a misplaced flag is a mistake to report, not to ignore."""
    accepted = set(spec.flags)
    if spec.store:
        accepted.add("store")
    if spec.key:
        accepted.add("key")
    if spec.value:
        accepted.add("value")
    for dest, flag in FLAG_NAMES.items():
        if options.get(dest) not in (None, False) and dest not in accepted:
            raise usage_error(f"-c {name} does not take {flag}")
    if spec.key == "required" and options["key"] is None:
        raise usage_error(f"-c {name} needs -k/--key")
    if spec.value == "required" and options["value"] is None:
        raise usage_error(f"-c {name} needs -V/--value")
    if name == "expire" and options["timeout"] is None:
        raise usage_error("-c expire needs --timeout SECONDS (-c persist removes an expiry)")


def parse_json(text: str) -> Any:
    try:
        return transfer.strict_loads(text)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise usage_error(f"-V/--value is not valid JSON ({reason}): {text!r}") from None


def parse_delta(text: str | None) -> int:
    if text is None:
        return 1
    try:
        return int(text)
    except ValueError:
        raise usage_error(f"-c incr needs an integer -V/--value, not {text!r}") from None


def plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def format_value(value: Any) -> str:
    text = transfer.exact_json(value)
    return repr(value) if text is None else text


def _count_expired(database: str) -> int:
    from ...models import Entry

    return Entry.objects.using(database).filter(expires__lte=time.time()).count()


def _count_lines(file: IO[bytes]) -> int | None:
    """Lines of a regular file (then rewound), for the progress total."""
    if not file.seekable():
        return None
    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
    file.seek(0)
    return lines


class _replacing:
    """A text file written beside ``path`` and moved over it on success, so a
    failed dump leaves no truncated file behind."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory, name = os.path.split(os.path.abspath(path))
        self.temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")

    def __enter__(self) -> IO[str]:
        try:
            self.file = open(self.temporary, "w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise usage_error(f"cannot write {self.path}: {exc.strerror}") from None
        return self.file

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.file.close()
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            os.unlink(self.temporary)


def _counts(first: tuple[int, str], *rest: tuple[int, str]) -> str:
    """``"3 new, 2 replaced"``: the first count always, the others when not zero."""
    shown = [first, *(pair for pair in rest if pair[0])]
    return ", ".join(f"{count} {what}" for count, what in shown)
