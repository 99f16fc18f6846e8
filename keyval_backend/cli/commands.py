"""The sub-commands of ``keyval``, one function each, given the
:class:`~.session.Session` of the run: ``HANDLERS`` maps each ``-c`` name to
its function, and :func:`run` runs one."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, OutputWrapper
from django.db import Error as DatabaseError

from .. import legacy, transfer
from .. import resign as resigning
from ..exceptions import UnreadableValue
from ..patterns import glob_escape
from .formats import counts, format_value, parse_delta, parse_json, plural
from .options import FAILED, INTERRUPTED, SIGPIPE_STATUS, check_options, usage_error
from .session import Session

# Expired rows deleted per statement by ``-c purge``: bounded, so that no
# statement holds locks for long on a large table.
PURGE_BATCH = 1000
_ABSENT: Any = object()

HANDLERS: dict[str, Callable[[Session], None]] = {}


def handles(name: str) -> Callable[[Callable[[Session], None]], Callable[[Session], None]]:
    """Register the function of ``-c name``."""

    def register(function: Callable[[Session], None]) -> Callable[[Session], None]:
        HANDLERS[name] = function
        return function

    return register


def run(
    options: dict[str, Any],
    stdout: OutputWrapper,
    stderr: OutputWrapper,
    label: Callable[[str], str],
) -> None:
    """Run the sub-command ``options["command"]``; every failure becomes a
    one-line CommandError with the command's exit status."""
    name = options["command"]
    check_options(name, options)
    session = Session(options, stdout, stderr, label)
    try:
        HANDLERS[name](session)
    except DatabaseError as exc:
        raise session.database_error(exc) from exc
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


@handles("set")
def set_(session: Session) -> None:
    value: Any = session.options["value"]
    if session.options["json"]:
        value = parse_json(value)
    timeout = session.options["timeout"]
    new = session.view.upsert(session.key, value, DEFAULT_TIMEOUT if timeout is None else timeout)
    verb = "Created" if new else "Updated"
    session.say(f"{verb} key {session.key!r} in store {session.store_name!r}.")


def _found(session: Session, value: Any) -> Any:
    """``value``, read with the default ``_ABSENT``, unless the key was missing."""
    if value is _ABSENT:
        raise session.missing()
    return value


@handles("get")
def get(session: Session) -> None:
    session.print_value(_found(session, session.view.get(session.key, _ABSENT)))


@handles("del")
def delete(session: Session) -> None:
    if not session.view.delete(session.key):
        raise session.missing()
    session.say(f"Deleted key {session.key!r} from store {session.store_name!r}.")


@handles("exists")
def exists(session: Session) -> None:
    found = session.view.has_key(session.key)
    session.emit("true" if found else "false")
    if not found:
        raise session.missing()


@handles("pop")
def pop(session: Session) -> None:
    session.print_value(_found(session, session.view.pop(session.key, _ABSENT)))


@handles("incr")
def incr(session: Session) -> None:
    delta = parse_delta(session.options["value"])
    try:
        value = session.view.incr(session.key, delta)
    except ValueError:
        raise session.missing() from None
    except TypeError as exc:
        raise CommandError(
            f"cannot add {delta!r} to key {session.key!r} of store {session.store_name!r}: {exc}",
            returncode=FAILED,
        ) from None
    session.emit(format_value(value))


@handles("ttl")
def ttl(session: Session) -> None:
    try:
        left = session.view.expires_in(session.key)
    except KeyError:
        raise session.missing() from None
    session.emit("null" if left is None else format_value(round(left, 3)))


@handles("expire")
def expire(session: Session) -> None:
    timeout = session.options["timeout"]
    if not session.view.touch(session.key, timeout):
        raise session.missing()
    session.say(
        f"Key {session.key!r} of store {session.store_name!r} expires in {timeout:g} seconds."
    )


@handles("persist")
def persist(session: Session) -> None:
    if not session.view.touch(session.key, None):
        raise session.missing()
    session.say(f"Key {session.key!r} of store {session.store_name!r} never expires now.")


@handles("list")
def list_(session: Session) -> None:
    prefix = session.options["prefix"] or ""
    pairs: Iterable[tuple[str, Any]]
    if session.options["values"]:
        pairs = session.view.iter_items(prefix)
    else:
        pairs = ((key, None) for key in session.view.iter_keys(glob_escape(prefix) + "*"))
    # The count is of every key of the store: a total only without --prefix.
    with session.progress("list", lambda: None if prefix else session.view.count(), True) as bar:
        for done, (key, value) in enumerate(pairs, 1):
            session.emit(f"{key}\t{format_value(value)}" if session.options["values"] else key)
            bar(done)


@handles("stores")
def stores(session: Session) -> None:
    for name, count in sorted(session.backend.stores().items()):
        session.emit(f"{name}\t{count}")


@handles("flush")
def flush(session: Session) -> None:
    count = session.view.count()
    if not session.options["yes"] and not session.confirm(
        f"Delete every entry of store {session.store_name!r} ({count} keys) in "
        f"{session.database_label(session.backend.database)}? [y/N] "
    ):
        session.say("Flush cancelled.")
        return
    session.view.clear()
    session.say(f"Flushed store {session.store_name!r}.")


@handles("purge")
def purge(session: Session) -> None:
    database = session.backend.database
    purged = 0
    with session.progress("purge", lambda: _count_expired(database), False) as bar:
        while True:
            deleted = session.backend.purge_expired(limit=PURGE_BATCH)
            purged += deleted
            bar(purged)
            if deleted < PURGE_BATCH:
                break
    session.say(f"Purged {plural(purged, 'expired entry', 'expired entries')}.")


@handles("dump")
def dump(session: Session) -> None:
    store = session.options["store"]
    database = session.backend.database
    output = session.options["output"]
    to_stdout = output in (None, "-")
    with (
        session.progress("dump", lambda: transfer.count_live(database, store), to_stdout) as bar,
        contextlib.nullcontext() if to_stdout else _replacing(output) as file,
    ):
        result = transfer.dump(
            (lambda line: session.stdout.write(line, ending="")) if file is None else file.write,
            database=database,
            store=store,
            serializer=session.serializer(),
            on_unreadable=session.skipper(bar),
            progress=bar,
        )
    where = "" if to_stdout else f" to {output}"
    session.conclude(
        f"Dumped {plural(result.entries, 'entry', 'entries')}{where}.",
        result.unreadable,
        "left out",
    )


@handles("load")
def load(session: Session) -> None:
    path = session.options["input"]
    if path in (None, "-"):
        stdin = session.options.get("stdin") or sys.stdin
        source: Any = getattr(stdin, "buffer", stdin)
        _load(session, source, lambda: None)
        return
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed below, after the load)
    except OSError as exc:
        raise usage_error(f"cannot read {path}: {exc.strerror}") from None
    with file:
        _load(session, file, lambda: _count_lines(file))


def _load(session: Session, source: Iterable[str | bytes], total: Callable[[], int | None]) -> None:
    with session.progress("load", total, False) as bar:
        try:
            result = transfer.load(
                source,
                database=session.backend.database,
                serializer=session.serializer(),
                replace=session.options["replace"],
                store=session.options["store"],
                on_bad_line=session.skipper(bar),
                progress=bar,
            )
        except transfer.BadLine as exc:
            raise CommandError(f"{exc}; nothing was loaded", returncode=FAILED) from None
    details = counts(
        (result.new, "new"),
        (result.replaced, "replaced"),
        (result.kept, "kept (already there; --replace overwrites)"),
        (result.expired, "expired"),
        (result.other_stores, "of other stores"),
    )
    session.conclude(
        f"Loaded {plural(result.written, 'entry', 'entries')}: {details}.",
        result.bad_lines,
        "skipped",
        "bad line",
    )


@handles("import-django-keyval")
def import_django_keyval(session: Session) -> None:
    table = session.options["table"] or legacy.OLD_TABLE
    if not session.options["yes"]:
        raise usage_error(
            "-c import-django-keyval unpickles every row of the old table, which runs "
            "code: pass --yes if that table is trusted"
        )
    with session.progress("import", lambda: None, False) as bar:
        try:
            result = legacy.import_table(
                session.backend,
                database=session.backend.database,
                table=table,
                replace=session.options["replace"],
                on_bad_row=session.skipper(bar),
                progress=bar,
            )
        except legacy.BadRow as exc:
            raise CommandError(f"{exc}; nothing was imported", returncode=FAILED) from None
    details = counts(
        (result.imported, "new"),
        (result.replaced, "replaced"),
        (result.skipped, "skipped (already there; --replace overwrites)"),
    )
    written = result.imported + result.replaced
    session.conclude(
        f"Imported {plural(written, 'entry', 'entries')} from {table}: {details}.",
        result.bad_rows,
        "skipped",
        "bad row",
    )


@handles("resign")
def resign(session: Session) -> None:
    with session.progress("resign", lambda: None, False) as bar:

        def report(message: str) -> None:
            bar.clear()
            session.stderr.write(f"unreadable: {message}")

        result = resigning.resign(
            session.backend.database,
            session.options["store"],
            on_unreadable=report,
            progress=bar,
        )
    session.conclude(
        f"re-signed {result.resigned}, already current {result.current}, "
        f"unreadable {result.unreadable}",
        result.unreadable,
        "left as they are",
    )


def _count_expired(database: str) -> int:
    from ..models import Entry

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
