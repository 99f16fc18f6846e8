"""The flags of the ``keyval`` command and what each sub-command takes, in
one table; the exit statuses.

The flags are those of django-keyval's command (``-c``, ``-n``, ``-k``, capital
``-V`` because ``-v`` is Django's verbosity), which users' scripts call.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandError, CommandParser, DjangoHelpFormatter

from .. import legacy

MISSING = 1
USAGE = 2
FAILED = 3
INTERRUPTED = 130
SIGPIPE_STATUS = 141  # 128 + SIGPIPE, as a shell reports a reader that went away


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE)


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
    "get": _spec("print the value of -k KEY", "json", "raw", key="required"),
    "del": _spec("delete -k KEY", key="required"),
    "exists": _spec("print true or false (exit status 0 or 1)", key="required"),
    "pop": _spec("print the value of -k KEY and delete it", "json", "raw", key="required"),
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


def seconds(text: str) -> float:
    """argparse type of --timeout: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


@dataclass(frozen=True)
class Flag:
    """One option: its names, help and argparse keywords. A ``checked`` flag
    is refused by the sub-commands that do not take it (see :data:`COMMANDS`)."""

    names: tuple[str, ...]
    help: str
    checked: bool = True
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        dest: str = self.kwargs.get("dest") or self.names[-1].lstrip("-").replace("-", "_")
        return dest

    @property
    def label(self) -> str:
        """How messages name it: ``-k/--key``, ``--json``."""
        return "/".join(self.names[:2]) if not self.names[0].startswith("--") else self.names[0]


def _flag(*names: str, help: str, checked: bool = True, **kwargs: Any) -> Flag:
    return Flag(names, help, checked, kwargs)


FLAGS: tuple[Flag, ...] = (
    _flag("-c", "--command", required=True, choices=list(COMMANDS), metavar="COMMAND",
          checked=False, help=f"What to do: {', '.join(COMMANDS)}."),
    _flag("-n", "--store", "--store_name", dest="store", metavar="STORE",
          help="The store (default: that of the cache, usually 'default')."),
    _flag("-k", "--key", help="The key."),
    _flag("-V", "--value", help="The value, stored as the string given (with --json: parsed "
          "as JSON); for incr, the delta."),
    _flag("--json", action="store_true",
          help="set: parse -V as JSON (numbers, lists, objects); get/pop: print a string "
          "value as JSON too (quoted), as every other value is."),
    _flag("--timeout", type=seconds, metavar="SECONDS",
          help="Expire the key after SECONDS (set: default from the cache's TIMEOUT)."),
    _flag("--raw", action="store_true",
          help="get/pop: print bytes as they are, instead of their repr."),
    _flag("--prefix", help="list: only the keys that start with PREFIX."),
    _flag("--values", action="store_true", help="list: print KEY<TAB>VALUE lines."),
    _flag("--yes", "--noinput", dest="yes", action="store_true",
          help="flush: do not ask for confirmation; import-django-keyval: the old table "
          "is trusted (it is unpickled)."),
    _flag("--output", metavar="FILE", help="dump: write to FILE, not stdout."),
    _flag("--input", metavar="FILE", help="load: read FILE, not stdin."),
    _flag("--replace", action="store_true",
          help="load, import-django-keyval: overwrite keys that exist (default: keep them)."),
    _flag("--continue-on-error", action="store_true",
          help="load: skip bad lines and load the rest; dump: skip unreadable entries; "
          "import-django-keyval: skip bad rows."),
    _flag("--table", metavar="NAME",
          help=f"import-django-keyval: the old table (default: {legacy.OLD_TABLE})."),
    _flag("--cache", default="keyval", metavar="ALIAS", checked=False,
          help="The CACHES alias of a KeyValCache (default: keyval)."),
    _flag("--database", metavar="ALIAS", checked=False,
          help="The DATABASES alias (default: the cache's)."),
)  # fmt: skip


def add_arguments(parser: CommandParser) -> None:
    for flag in FLAGS:
        parser.add_argument(*flag.names, help=flag.help, **flag.kwargs)


SYNOPSIS = """\
Read and change the key-value stores of keyval_backend.

  keyval -c set -n STORE -k KEY -V VALUE [--json] [--timeout SECONDS]
  keyval -c get -n STORE -k KEY [--json | --raw]
  keyval -c dump [-n STORE] [--output FILE]    keyval -c load [--input FILE] [--replace]

commands (-c):
{commands}

-n defaults to the store of the cache (--cache, default "keyval").
Exit status: 0 done, 1 missing key, 2 usage error, 3 failed."""

HELP = SYNOPSIS.format(
    commands="\n".join(
        # A name too long for the column gets a line of its own.
        f"  {name:<8} {spec.summary}" if len(name) <= 8 else f"  {name}\n  {'':8} {spec.summary}"
        for name, spec in COMMANDS.items()
    )
)


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, and the synopsis as written."""


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options the command does not take, and missing ones it needs:
    a misplaced flag is a mistake to report, not to ignore."""
    spec = COMMANDS[name]
    accepted = set(spec.flags)
    if spec.store:
        accepted.add("store")
    if spec.key:
        accepted.add("key")
    if spec.value:
        accepted.add("value")
    for flag in FLAGS:
        given = options.get(flag.dest) not in (None, False)
        if flag.checked and given and flag.dest not in accepted:
            raise usage_error(f"-c {name} does not take {flag.label}")
    if spec.key == "required" and options["key"] is None:
        raise usage_error(f"-c {name} needs -k/--key")
    if spec.value == "required" and options["value"] is None:
        raise usage_error(f"-c {name} needs -V/--value")
    if options.get("json") and options.get("raw"):
        raise usage_error(f"-c {name} takes --json or --raw, not both")
    if name == "expire" and options["timeout"] is None:
        raise usage_error("-c expire needs --timeout SECONDS (-c persist removes an expiry)")
