"""The ``keyval`` command without a Django project.

Settings are made here: an embedded SQLite file (``./keyval.sqlite3``, or
``--db PATH`` / ``KEYVAL_DATABASE``, which may also be a database URL) that is
created and migrated on first use, set up for several processes at once: WAL
(readers never wait for a writer), a busy timeout (a writer waits for another
instead of failing), and ``BEGIN IMMEDIATE`` transactions (a transaction that
reads first cannot fail to upgrade to a write lock).

Pickled values are signed with ``KEYVAL_SECRET_KEY`` when it is set (the
``SECRET_KEY`` of a project whose database ``--db`` points at), otherwise
with a random key made once per user in ``~/.config/keyval/secret_key``. The
key is not kept beside the database on purpose: a database file from
elsewhere must not bring the key that makes its pickles trusted.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.management.base import CommandError, CommandParser
from django.db import Error as DatabaseError

from .cli.options import FAILED, USAGE, usage_error
from .management.commands.keyval import Command

DEFAULT_DATABASE = "keyval.sqlite3"
DATABASE_ENV = "KEYVAL_DATABASE"
SECRET_KEY_ENV = "KEYVAL_SECRET_KEY"
BUSY_TIMEOUT_ENV = "KEYVAL_BUSY_TIMEOUT"
# Seconds a write waits for another process's write before "database is locked".
BUSY_TIMEOUT = 10.0
URL_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "mariadb": "django.db.backends.mysql",
}
# The package's extra that installs each server's driver.
DRIVER_EXTRAS = {"django.db.backends.postgresql": "postgres", "django.db.backends.mysql": "mysql"}


def database_settings(spec: str) -> dict[str, Any]:
    """``DATABASES["default"]`` for a file path, ``sqlite:///PATH`` (three
    slashes, then a relative path or a fourth slash for an absolute one), or
    ``postgres://`` / ``mysql://USER:PASSWORD@HOST:PORT/NAME?OPTION=VALUE``."""
    if "://" not in spec:
        return _sqlite(spec)
    url = urlsplit(spec)
    scheme = url.scheme.lower()
    if scheme == "sqlite":
        if url.netloc or not url.path.startswith("/"):
            raise usage_error(f"a SQLite URL is sqlite:///PATH, not {spec!r}")
        return _sqlite(unquote(url.path[1:]))
    engine = URL_ENGINES.get(scheme)
    if engine is None:
        raise usage_error(
            f"unsupported database URL scheme {scheme!r}: use a file path, sqlite:///PATH, "
            "postgres://... or mysql://..."
        )
    try:
        port = url.port
    except ValueError:
        raise usage_error(f"bad port in database URL {describe(spec)}") from None
    name = unquote(url.path[1:])
    if not name:
        raise usage_error(f"database URL {describe(spec)} names no database (…/NAME)")
    host = url.netloc.rpartition("@")[2]
    # The host as written (a socket directory keeps its case), without the port.
    host = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    options: dict[str, Any] = dict(parse_qsl(url.query))
    if engine.endswith("mysql"):
        options.setdefault("charset", "utf8mb4")
    return {
        "ENGINE": engine,
        "NAME": name,
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": unquote(host),
        "PORT": "" if port is None else str(port),
        "OPTIONS": options,
    }


def _sqlite(path: str) -> dict[str, Any]:
    path = os.path.abspath(os.path.expanduser(path))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise usage_error(f"cannot create database {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise usage_error(f"database {path} is a directory")
    timeout_text = os.environ.get(BUSY_TIMEOUT_ENV) or str(BUSY_TIMEOUT)
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if not timeout >= 0:
        raise usage_error(f"{BUSY_TIMEOUT_ENV} must be seconds (>= 0), not {timeout_text!r}")
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            "timeout": timeout,
            "transaction_mode": "IMMEDIATE",
            # journal_mode is stored in the file; synchronous=NORMAL is safe in WAL mode.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }


def describe(spec: str) -> str:
    """The database as messages name it: an absolute path, or the URL
    without its password."""
    if "://" not in spec:
        return os.path.abspath(os.path.expanduser(spec))
    url = urlsplit(spec)
    if url.password is None:
        return spec
    credentials, _, host = url.netloc.rpartition("@")
    return url._replace(netloc=f"{credentials.partition(':')[0]}:***@{host}").geturl()


def secret_key() -> str:
    """``KEYVAL_SECRET_KEY``, or this user's key, made on first use."""
    key = os.environ.get(SECRET_KEY_ENV)
    if key:
        return key
    directory = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "keyval"
    path = directory / "secret_key"
    try:
        if not path.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Written in full under another name, then linked into place: a
            # process that starts at the same time reads one whole key or the other's.
            draft = directory / f".secret_key.{os.getpid()}"
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        key = path.read_text().strip()
    except OSError as exc:
        raise CommandError(
            f"cannot make the signing key {path}: {exc.strerror}; set {SECRET_KEY_ENV}",
            returncode=FAILED,
        ) from None
    if not key:
        raise CommandError(f"the signing key {path} is empty", returncode=FAILED)
    return key


def configure(spec: str) -> None:
    """Configure Django for the database ``spec`` and migrate it if needed."""
    import django
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    database = database_settings(spec)
    settings.configure(
        SECRET_KEY=secret_key(),
        INSTALLED_APPS=["django.contrib.contenttypes", "keyval_backend"],
        DATABASES={"default": database},
        USE_TZ=True,
    )
    django.setup()
    try:
        if _unapplied():
            _migrate()
    except (DatabaseError, ImproperlyConfigured) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        extra = DRIVER_EXTRAS.get(database["ENGINE"])
        if extra and isinstance(exc, ImproperlyConfigured) and text.startswith("Error loading"):
            # Django's "Error loading psycopg2 or psycopg module" names no package to install.
            text += f"; install it with: pip install 'keyval-backend[{extra}]'"
        raise CommandError(f"database {describe(spec)}: {text}", returncode=FAILED) from None


def _unapplied() -> bool:
    """Whether keyval_backend's migrations are not all applied."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes("keyval_backend")))


def _migrate() -> None:
    from django.core.management import call_command

    try:
        call_command(
            "migrate", verbosity=0, interactive=False, skip_checks=True, stdout=io.StringIO()
        )
    except DatabaseError:
        # Another process's first use may have migrated it meanwhile.
        if _unapplied():
            raise


class StandaloneCommand(Command):
    """The command with ``--db``, configuring Django before it runs."""

    # Meaningless without a project (--settings, --pythonpath) or noise: kept
    # working, left out of --help.
    suppressed_base_arguments = {  # noqa: RUF012 (django-stubs declares a set)
        "--settings", "--pythonpath", "--traceback", "--no-color", "--force-color", "--skip-checks"
    }  # fmt: skip

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.prog = "keyval"
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--db",
            metavar="PATH|URL",
            help=f"The database: a SQLite file, made on first use (default: ${DATABASE_ENV}, "
            f"else ./{DEFAULT_DATABASE}), or a URL: postgres://USER:PASSWORD@HOST:PORT/NAME, "
            "mysql://..., sqlite:///PATH.",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        spec = options["db"] or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE
        self.described = describe(spec)
        configure(spec)
        return super().execute(*args, **options)

    def database_label(self, alias: str) -> str:
        return f"database {self.described}"


def run(argv: list[str]) -> None:
    """Run ``keyval ARGV``; exits with the command's status."""
    StandaloneCommand().run_from_argv(["keyval", "keyval", *argv])


__all__ = ["USAGE", "StandaloneCommand", "configure", "database_settings", "run"]
