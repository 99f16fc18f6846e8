"""The ``keyval`` command: ``call_command`` for ``manage.py keyval``, and real
processes for ``python -m keyval_backend`` and the ``keyval`` console script.

The stand-alone processes run on the database of the test run: their own
SQLite file under ``KEYVAL_TEST_DB=sqlite``, the test database by URL under
``postgres`` and ``mariadb``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from freezegun.api import FrozenDateTimeFactory

from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache
from keyval_backend.models import Entry
from keyval_backend.standalone import database_settings, describe

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
ON_SQLITE = connection.vendor == "sqlite"


class Run:
    """``manage.py keyval ARGS`` in this process: stdout, stderr, and the
    CommandError if it failed."""

    def __call__(self, *args: str, stdin: Any = None) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        options: dict[str, Any] = {"stdout": out, "stderr": err}
        if stdin is not None:
            options["stdin"] = stdin
        call_command("keyval", *args, **options)
        return out.getvalue(), err.getvalue()

    def fails(self, returncode: int, *args: str, stdin: Any = None) -> str:
        with pytest.raises(CommandError) as failure:
            self(*args, stdin=stdin)
        assert failure.value.returncode == returncode, failure.value
        message = str(failure.value)
        assert "\n" not in message
        return message


@pytest.fixture
def run(kv: KeyValCache) -> Run:
    return Run()


class Terminal(io.StringIO):
    """A stream that says it is an interactive terminal."""

    def isatty(self) -> bool:
        return True


# -- manage.py keyval ------------------------------------------------------------------


def test_the_old_commands_with_their_flags(run: Run) -> None:
    assert run("-c", "set", "-n", "name", "-k", "key", "-V", "value") == (
        "",
        "Created key 'key' in store 'name'.\n",
    )
    assert run("-c", "get", "-n", "name", "-k", "key") == ("value\n", "")
    assert run("--command", "set", "--store_name", "name", "--key", "key", "--value", "new")[1] == (
        "Updated key 'key' in store 'name'.\n"
    )
    assert run("--command=get", "--store=name", "--key=key")[0] == "new\n"
    assert KeyVal("name").get("key") == "new"
    deleted = run("-c", "del", "-n", "name", "-k", "key")
    assert deleted == ("", "Deleted key 'key' from store 'name'.\n")
    assert not KeyVal("name").exists("key")


def test_values_are_strings_unless_json(run: Run) -> None:
    run("-c", "set", "-k", "plain", "-V", "42")
    run("-c", "set", "-k", "typed", "-V", '{"n": [1, 2.5, null, true]}', "--json")
    store = KeyVal("default")
    assert store.get("plain") == "42"
    assert store.get("typed") == {"n": [1, 2.5, None, True]}
    # A string comes back as it was given; --json tells it from the number 42.
    assert run("-c", "get", "-k", "plain")[0] == "42\n"
    assert run("-c", "get", "-k", "plain", "--json")[0] == '"42"\n'
    assert run("-c", "get", "-k", "typed")[0] == '{"n":[1,2.5,null,true]}\n'


def test_get_prints_text_as_it_is_or_as_json(run: Run) -> None:
    store = KeyVal("s")
    store.set("text", "héllo\tworld")
    store.set("line", "ends\n")
    assert run("-c", "get", "-n", "s", "-k", "text")[0] == "héllo\tworld\n"
    assert run("-c", "get", "-n", "s", "-k", "text", "--json")[0] == '"héllo\\tworld"\n'
    assert run("-c", "get", "-n", "s", "-k", "text", "--raw")[0] == "héllo\tworld\n"
    # The value, then one newline, whatever the value ends with.
    assert run("-c", "get", "-n", "s", "-k", "line")[0] == "ends\n\n"
    assert run("-c", "pop", "-n", "s", "-k", "line", "--json")[0] == '"ends\\n"\n'
    assert run.fails(2, "-c", "get", "-n", "s", "-k", "text", "--json", "--raw") == (
        "-c get takes --json or --raw, not both"
    )


@pytest.mark.pickle_only("a tuple and bytes")
def test_get_prints_the_repr_or_raw_bytes_of_other_values(run: Run) -> None:
    store = KeyVal("s")
    store.set("tuple", (1, "a"))
    store.set("bytes", b"\x00\xffraw")
    assert run("-c", "get", "-n", "s", "-k", "tuple")[0] == "(1, 'a')\n"
    assert run("-c", "get", "-n", "s", "-k", "bytes")[0] == "b'\\x00\\xffraw'\n"
    binary = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    call_command("keyval", "-c", "get", "-n", "s", "-k", "bytes", "--raw", stdout=binary)
    assert binary.buffer.getvalue() == b"\x00\xffraw"  # type: ignore[attr-defined]


def test_exists_pop_and_missing_keys(run: Run) -> None:
    run("-c", "set", "-k", "k", "-V", "v")
    assert run("-c", "exists", "-k", "k")[0] == "true\n"
    assert run("-c", "pop", "-k", "k")[0] == "v\n"
    for command in ("get", "del", "pop", "exists", "ttl", "incr", "persist"):
        assert run.fails(1, "-c", command, "-k", "k") == "key 'k' not found in store 'default'"
    assert run.fails(1, "-c", "expire", "-k", "k", "--timeout", "5")


def test_incr(run: Run) -> None:
    run("-c", "set", "-k", "n", "-V", "40", "--json")
    assert run("-c", "incr", "-k", "n")[0] == "41\n"
    assert run("-c", "incr", "-k", "n", "-V", "-42")[0] == "-1\n"
    assert KeyVal("default").get("n") == -1
    run("-c", "set", "-k", "word", "-V", "text")
    assert "cannot add 1 to key 'word'" in run.fails(3, "-c", "incr", "-k", "word")
    assert run.fails(2, "-c", "incr", "-k", "n", "-V", "1.5") == (
        "-c incr needs an integer -V/--value, not '1.5'"
    )


def test_expiry(run: Run, frozen: FrozenDateTimeFactory) -> None:
    run("-c", "set", "-k", "k", "-V", "v", "--timeout", "60")
    assert run("-c", "ttl", "-k", "k")[0] == "60.0\n"
    frozen.tick(15)
    assert run("-c", "ttl", "-k", "k")[0] == "45.0\n"
    assert run("-c", "expire", "-k", "k", "--timeout", "10")[1] == (
        "Key 'k' of store 'default' expires in 10 seconds.\n"
    )
    assert run("-c", "persist", "-k", "k")[1] == "Key 'k' of store 'default' never expires now.\n"
    assert run("-c", "ttl", "-k", "k")[0] == "null\n"
    run("-c", "expire", "-k", "k", "--timeout", "0.5")
    frozen.tick(1)
    run.fails(1, "-c", "get", "-k", "k")
    assert run("-c", "list")[0] == ""


def test_list_and_stores(run: Run, use_caches: Callable[..., None]) -> None:
    store = KeyVal("s")
    for key in ("a1", "a2", "b", "tab\there", "newline\n"):
        store.set(key, key.upper())
    KeyVal("other").set("a3", 3)
    assert sorted(run("-c", "list", "-n", "s")[0].split("\n")) == [
        "", "", "a1", "a2", "b", "newline", "tab\there"
    ]  # fmt: skip
    assert sorted(run("-c", "list", "-n", "s", "--prefix", "a")[0].splitlines()) == ["a1", "a2"]
    assert sorted(run("-c", "list", "-n", "s", "--prefix", "a", "--values")[0].splitlines()) == [
        'a1\t"A1"',
        'a2\t"A2"',
    ]
    assert run("-c", "stores")[0] == "other\t1\ns\t5\n"


def test_flush_asks_first(run: Run) -> None:
    KeyVal("s").set("k", 1)
    KeyVal("t").set("k", 1)
    message = run.fails(2, "-c", "flush", "-n", "s", stdin=io.StringIO("y\n"))
    assert message.endswith("stdin is not a terminal: pass --yes (or --noinput)")
    assert run("-c", "flush", "-n", "s", stdin=Terminal("n\n"))[1] == (
        "Delete every entry of store 's' (1 keys) in database 'default'? [y/N] Flush cancelled.\n"
    )
    assert KeyVal("s").exists("k")
    run("-c", "flush", "-n", "s", stdin=Terminal("y\n"))
    assert not KeyVal("s").exists("k")
    KeyVal("s").set("k", 1)
    assert run("-c", "flush", "-n", "s", "--noinput")[1] == "Flushed store 's'.\n"
    assert not KeyVal("s").exists("k")
    assert KeyVal("t").exists("k")


def test_purge(run: Run, frozen: FrozenDateTimeFactory) -> None:
    cache = caches["keyval"]
    cache.set_many({f"k{i}": i for i in range(2500)}, timeout=10)
    cache.store("other").set("keep", 1, timeout=100)
    cache.store("other").set("forever", 1)
    frozen.tick(11)
    assert run("-c", "purge") == ("", "Purged 2500 expired entries.\n")
    assert Entry.objects.count() == 2
    assert run("-c", "purge", "-v", "0") == ("", "")


def test_another_cache_alias(run: Run, use_caches: Callable[..., None]) -> None:
    use_caches(
        keyval={"BACKEND": KEYVAL_BACKEND},
        tagged={"BACKEND": KEYVAL_BACKEND, "LOCATION": "own", "KEY_PREFIX": "p", "VERSION": 3},
    )
    run("--cache", "tagged", "-c", "set", "-k", "k", "-V", "v")
    assert caches["tagged"].get("k") == "v"
    assert Entry.objects.get().key_name == "p:3:k"
    assert Entry.objects.get().store_name == "own"
    assert run("--cache", "tagged", "-c", "list")[0] == "k\n"
    assert run("--cache", "tagged", "--database", "default", "-c", "get", "-k", "k")[0] == "v\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-c", "set", "-k", "k"), "-c set needs -V/--value"),
        (("-c", "get"), "-c get needs -k/--key"),
        (("-c", "get", "-k", "k", "--values"), "-c get does not take --values"),
        (("-c", "stores", "-n", "s"), "-c stores does not take -n/--store"),
        (("-c", "list", "-k", "k"), "-c list does not take -k/--key"),
        (("-c", "set", "-k", "k", "-V", "{", "--json"), "-V/--value is not valid JSON"),
        (("-c", "set", "-k", "k", "-V", "NaN", "--json"), "-V/--value is not valid JSON"),
        (("-c", "expire", "-k", "k"), "-c expire needs --timeout SECONDS"),
        (("--cache", "nope", "-c", "stores"), "no cache 'nope' in CACHES"),
        (("--cache", "default", "-c", "stores"), "cache 'default' is not a keyval_backend"),
        (("--database", "nope", "-c", "stores"), "no database 'nope' in DATABASES"),
        (("-c", "load", "--input", "/nonexistent/dump"), "cannot read /nonexistent/dump"),
        (("-c", "dump", "--output", "/nonexistent/dump"), "cannot write /nonexistent/dump"),
    ],
)
def test_usage_errors_change_nothing(run: Run, args: tuple[str, ...], message: str) -> None:
    KeyVal("s").set("k", "before")
    assert run.fails(2, *args).startswith(message)
    assert KeyVal("s").get("k") == "before"
    assert Entry.objects.count() == 1


def test_a_misconfigured_cache(run: Run, use_caches: Callable[..., None]) -> None:
    use_caches(bad={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"NOPE": 1}})
    assert run.fails(3, "--cache", "bad", "-c", "stores").startswith(
        "Unknown KeyValCache OPTIONS ['NOPE']"
    )


def test_argparse_errors(run: Run) -> None:
    # From a shell these exit with status 2 (see the stand-alone session).
    assert "-c/--command" in run.fails(1)
    assert "invalid choice: 'frob'" in run.fails(1, "-c", "frob")
    assert "positive number of seconds" in run.fails(1, "-c", "set", "-k", "k", "--timeout", "0")


def test_database_errors_are_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError('relation "keyval_backend_entry" does not exist\nLINE 1: ...')

    monkeypatch.setattr(KeyValCache, "get", broken)
    assert run.fails(3, "-c", "get", "-k", "k") == (
        "database 'default': relation \"keyval_backend_entry\" does not exist LINE 1: ...; "
        "has migrate been run on it?"
    )


@pytest.mark.parametrize(
    ("serializer", "reason"),
    [("pickle", "signature mismatch"), ("json", "stored 'json.1' value cannot be loaded")],
)
def test_unreadable_values_are_reported(
    run: Run, use_caches: Callable[..., None], serializer: str, reason: str
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": serializer}})
    KeyVal("s").set("k", ["a", "list"])
    Entry.objects.update(value=b"\x00" * 40)
    message = run.fails(3, "-c", "get", "-n", "s", "-k", "k")
    assert message.startswith(f"unreadable value: {reason}")


def test_progress_bar_only_on_a_terminal(run: Run, tmp_path: Path) -> None:
    caches["keyval"].set_many({f"k{i}": i for i in range(10)})
    terminal = Terminal()
    call_command("keyval", "-c", "dump", "--output", str(tmp_path / "d"), stderr=terminal)
    # Drawn in place (redrawn at most every 0.1 s), then erased before the message.
    *drawn, erased, message = terminal.getvalue().split("\r")
    assert message == f"Dumped 10 entries to {tmp_path / 'd'}.\n"
    frames = [frame for frame in drawn if frame]
    assert frames, terminal.getvalue()
    assert all(frame.startswith("dump: ") and "/10 " in frame for frame in frames), frames
    assert erased.strip() == ""
    assert len(erased) >= max(map(len, frames))
    # Listing onto the same terminal would mix the bar with the keys.
    out, err = Terminal(), Terminal()
    call_command("keyval", "-c", "list", stdout=out, stderr=err)
    assert err.getvalue() == ""
    assert len(out.getvalue().splitlines()) == 10


# -- the stand-alone command -------------------------------------------------------------


def _url(settings_dict: dict[str, Any]) -> str:
    scheme = "postgres" if connection.vendor == "postgresql" else "mysql"
    user, password = settings_dict["USER"], settings_dict["PASSWORD"]
    credentials = f"{user}:{password}" if password else user
    host = f"{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT']}"
    return f"{scheme}://{credentials}@{host}/{settings_dict['NAME']}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty working directory and config home for stand-alone processes."""
    (tmp_path / "config").mkdir()
    return tmp_path


@pytest.fixture
def keyval(home: Path, transactional_db: None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``python -m keyval_backend ARGS`` on this run's database, in ``home``,
    signing with the tests' SECRET_KEY so that both sides read each other's
    pickles. Committed rows (no test transaction): ``transactional_db``
    empties the tables afterwards."""
    database = str(home / "kv.sqlite3") if ON_SQLITE else _url(connection.settings_dict)

    def keyval(
        *args: str, input: str | None = None, script: bool = False, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return standalone(
            home, "--db", database, *args, input=input, script=script,
            KEYVAL_SECRET_KEY=settings.SECRET_KEY, **env,
        )  # fmt: skip

    return keyval


def standalone(
    home: Path,
    *args: str,
    input: str | None = None,
    script: bool = False,
    code: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """The stand-alone command: ``python -m keyval_backend``, the ``keyval``
    script, or ``python -c CODE`` that runs it."""
    program = [str(Path(sys.executable).with_name("keyval"))] if script else [
        sys.executable, *(["-c", code] if code else ["-m", "keyval_backend"])
    ]  # fmt: skip
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KEYVAL_", "DJANGO_"))},
        "XDG_CONFIG_HOME": str(home / "config"),
        # Warnings fail the process, except Django's on a connection it could
        # not set up (a junk file), which it leaves unclosed.
        "PYTHONWARNINGS": "error,ignore::ResourceWarning",
        **env,
    }
    return subprocess.run(
        [*program, *args], cwd=home, env=environment, input=input, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def expire_in_the_past(home: Path, key: str) -> None:
    """Make ``key`` expired in the stand-alone database, as time passing would
    (other processes do not see this process's frozen clock)."""
    rows = Entry.objects.filter(key=f":1:{key}".encode())
    if not ON_SQLITE:
        assert rows.update(expires=1.0) == 1
        return
    with closing(sqlite3.connect(home / "kv.sqlite3")) as database, database:
        database.execute(
            "UPDATE keyval_backend_entry SET expires = 1.0 WHERE key = ?", (f":1:{key}".encode(),)
        )


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.rstrip("\n")


def test_standalone_session(
    keyval: Callable[..., subprocess.CompletedProcess[str]], home: Path
) -> None:
    """The transcript of the issue: set, get, list, dump, load, purge, mistakes."""
    assert keyval("-c", "set", "-n", "demo", "-k", "greeting", "-V", "hello").stderr == (
        "Created key 'greeting' in store 'demo'.\n"
    )
    keyval("-c", "set", "-n", "demo", "-k", "config", "-V", '{"retries": 3}', "--json")
    keyval("-c", "set", "-n", "web", "-k", "session", "-V", "x", "--timeout", "3600")
    # What -V stored comes back as it was, for $(keyval -c get ...).
    assert keyval("-c", "get", "-n", "demo", "-k", "greeting").stdout == "hello\n"
    assert keyval("-c", "get", "-n", "demo", "-k", "greeting", "--raw").stdout == "hello\n"
    expire_in_the_past(home, "session")
    assert sorted(keyval("-c", "list", "-n", "demo", "--values").stdout.splitlines()) == [
        'config\t{"retries":3}',
        'greeting\t"hello"',
    ]
    dumped = keyval("-c", "dump", "-n", "demo", "--output", "demo.jsonl")
    assert dumped.stderr == "Dumped 2 entries to demo.jsonl.\n"
    lines = sorted((home / "demo.jsonl").read_text().splitlines())
    assert lines == [
        '{"store":"demo","key":":1:config","expires":null,"value":{"retries":3}}',
        '{"store":"demo","key":":1:greeting","expires":null,"value":"hello"}',
    ]
    assert keyval("-c", "flush", "-n", "demo", "--yes").returncode == 0
    loaded = keyval("-c", "load", input="".join(line + "\n" for line in lines))
    assert loaded.stderr == "Loaded 2 entries: 2 new.\n"
    assert keyval("-c", "get", "-n", "demo", "-k", "config").stdout == '{"retries":3}\n'
    assert keyval("-c", "purge").stderr == "Purged 1 expired entry.\n"

    assert one_line_error(keyval(), 2) == (
        "keyval: error: the following arguments are required: -c/--command"
    )
    assert one_line_error(keyval("-c", "get", "-n", "demo", "-k", "nope"), 1) == (
        "CommandError: key 'nope' not found in store 'demo'"
    )
    assert one_line_error(keyval("-c", "set", "-n", "demo", "-k", "k"), 2) == (
        "CommandError: -c set needs -V/--value"
    )
    bad = keyval("-c", "load", input=lines[0] + "\n" + lines[1][:-1] + "\n")
    assert one_line_error(bad, 3) == (
        "CommandError: line 2: invalid JSON: Expecting ',' delimiter; nothing was loaded"
    )


def test_console_script(keyval: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """``pip install`` puts ``keyval`` beside the interpreter."""
    assert keyval("-c", "set", "-k", "k", "-V", "v", script=True).returncode == 0
    assert keyval("-c", "get", "-k", "k", script=True).stdout == "v\n"
    help_text = keyval("--help", script=True).stdout
    assert help_text.startswith("Read and change the key-value stores")
    assert "--db PATH|URL" in help_text
    assert "--settings" not in help_text


@pytest.mark.skipif(not ON_SQLITE, reason="the embedded SQLite database")
def test_standalone_sqlite_file(home: Path) -> None:
    first = standalone(home, "-c", "set", "-k", "k", "-V", "v")
    assert first.returncode == 0, first.stderr
    database = home / "keyval.sqlite3"
    with closing(sqlite3.connect(database)) as connected:
        assert connected.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    key_file = home / "config" / "keyval" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # The next process signs with the same key: it reads the pickled string.
    assert standalone(home, "-c", "get", "-k", "k").stdout == "v\n"
    # Another key (another user's, or a copied file) refuses it, unpickling nothing.
    other = standalone(home, "-c", "get", "-k", "k", KEYVAL_SECRET_KEY="another")
    assert one_line_error(other, 3).startswith("CommandError: unreadable value: signature mismatch")
    env = standalone(home, "-c", "get", "-k", "k", KEYVAL_DATABASE=f"sqlite:///{home}/other.db")
    assert one_line_error(env, 1) == "CommandError: key 'k' not found in store 'default'"
    assert (home / "other.db").exists()


@pytest.mark.skipif(not ON_SQLITE, reason="the embedded SQLite database")
def test_standalone_database_mistakes(home: Path) -> None:
    missing = standalone(home, "--db", str(home / "no" / "kv.sqlite3"), "-c", "stores")
    assert one_line_error(missing, 2) == (
        f"CommandError: cannot create database {home / 'no' / 'kv.sqlite3'}: "
        f"directory {home / 'no'} does not exist"
    )
    assert not (home / "no").exists()
    (home / "junk").write_text("not a database\n" * 100)
    junk = standalone(home, "--db", "junk", "-c", "stores")
    assert one_line_error(junk, 3) == (
        f"CommandError: database {home / 'junk'}: file is not a database"
    )
    scheme = standalone(home, "--db", "redis://localhost/0", "-c", "stores")
    assert one_line_error(scheme, 2).startswith(
        "CommandError: unsupported database URL scheme 'redis'"
    )


@pytest.mark.skipif(not ON_SQLITE, reason="the embedded SQLite database")
def test_standalone_locked_database(home: Path) -> None:
    assert standalone(home, "-c", "set", "-k", "k", "-V", "v").returncode == 0
    holder = sqlite3.connect(home / "keyval.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # Readers go on in WAL mode; a writer waits for the busy timeout, then fails.
        assert standalone(home, "-c", "get", "-k", "k").stdout == "v\n"
        locked = standalone(home, "-c", "set", "-k", "k", "-V", "w", KEYVAL_BUSY_TIMEOUT="0.2")
        assert one_line_error(locked, 3) == (
            f"CommandError: database {home / 'keyval.sqlite3'}: database is locked"
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.skipif(not ON_SQLITE, reason="the embedded SQLite database")
def test_standalone_concurrent_writers(home: Path) -> None:
    """Forked processes sharing the stand-alone file: no increment is lost
    and no write fails with "database is locked"."""
    script = textwrap.dedent(
        """
        import multiprocessing, sys
        from django.db import connections
        from keyval_backend.standalone import configure
        configure(sys.argv[1])
        from django.core.cache import caches
        from keyval_backend import KeyVal

        def work(n):
            kv, counter = KeyVal("race"), caches["keyval"].store("race")
            for i in range(100):
                kv.set(f"{n}-{i}", i)
                counter.incr("count")

        if __name__ == "__main__":
            KeyVal("race").set("count", 0)
            connections.close_all()
            workers = [multiprocessing.get_context("fork").Process(target=work, args=(n,))
                       for n in range(4)]
            for worker in workers: worker.start()
            for worker in workers: worker.join()
            assert all(worker.exitcode == 0 for worker in workers)
            print(KeyVal("race").get("count"), len(KeyVal("race")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(home / "race.sqlite3")], capture_output=True,
        text=True, timeout=120, env={**os.environ, "KEYVAL_SECRET_KEY": "s"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "400 401\n"


def needs_driver(extra: str, *modules: str) -> pytest.MarkDecorator:
    """Skip unless one of the database drivers ``modules`` is installed,
    naming the extra of the package that installs one."""
    return pytest.mark.skipif(
        all(importlib.util.find_spec(module) is None for module in modules),
        reason=f"needs a driver the {extra} extra installs: pip install -e '.[{extra}]'",
    )


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "postgres://root@127.0.0.1:1/test",
            marks=needs_driver("postgres", "psycopg", "psycopg2"),
        ),
        pytest.param("mysql://root@127.0.0.1:1/test", marks=needs_driver("mysql", "MySQLdb")),
    ],
)
def test_standalone_unreachable_servers(home: Path, url: str) -> None:
    result = standalone(home, "--db", url, "-c", "stores", KEYVAL_SECRET_KEY="s")
    message = one_line_error(result, 3)
    assert message.startswith(f"CommandError: database {url}: "), message
    assert "refused" in message.lower() or "can't connect" in message.lower(), message


@pytest.mark.parametrize(
    ("url", "drivers", "extra"),
    [
        ("postgres://root@127.0.0.1:1/test", ("psycopg", "psycopg2"), "postgres"),
        ("mysql://root@127.0.0.1:1/test", ("MySQLdb",), "mysql"),
    ],
)
def test_standalone_without_the_driver_names_the_extra(
    home: Path, url: str, drivers: tuple[str, ...], extra: str
) -> None:
    # The drivers made unimportable, as on a machine without the extra.
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in drivers)
    code = f"import sys; {hide}from keyval_backend.__main__ import main; main()"
    result = standalone(home, "--db", url, "-c", "stores", code=code, KEYVAL_SECRET_KEY="s")
    message = one_line_error(result, 3)
    assert message.startswith(f"CommandError: database {url}: "), message
    assert message.endswith(f"install it with: pip install 'keyval-backend[{extra}]'"), message


# -- stand-alone settings ------------------------------------------------------------------


def test_database_urls(tmp_path: Path) -> None:
    assert database_settings("postgres://u%40x:p%2Fw@db.example:6543/kv?sslmode=require") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "kv",
        "USER": "u@x",
        "PASSWORD": "p/w",
        "HOST": "db.example",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require"},
    }
    mysql = database_settings("mariadb://root@[::1]/kv")
    assert (mysql["ENGINE"], mysql["HOST"], mysql["PORT"], mysql["PASSWORD"]) == (
        "django.db.backends.mysql", "::1", "", ""
    )  # fmt: skip
    assert mysql["OPTIONS"] == {"charset": "utf8mb4"}
    socket = database_settings("postgresql://%2Fvar%2Frun%2FPG/kv")
    assert (socket["HOST"], socket["USER"]) == ("/var/run/PG", "")
    sqlite = database_settings(f"sqlite:///{tmp_path}/kv.sqlite3")
    assert sqlite["NAME"] == str(tmp_path / "kv.sqlite3")
    assert sqlite["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert database_settings(str(tmp_path / "kv.sqlite3")) == sqlite
    for spec, message in [
        ("postgres://host:99999/kv", "bad port"),
        ("postgres://host/", "names no database"),
        ("sqlite://host/kv", "a SQLite URL is sqlite:///PATH"),
        ("ftp://host/kv", "unsupported database URL scheme 'ftp'"),
    ]:
        with pytest.raises(CommandError, match=message) as failure:
            database_settings(spec)
        assert failure.value.returncode == 2
    assert describe("postgres://u:secret@h:1/kv") == "postgres://u:***@h:1/kv"
    assert describe("postgres://u@h/kv") == "postgres://u@h/kv"


def test_dump_names_every_store_by_default(run: Run) -> None:
    KeyVal("a").set("k", 1)
    KeyVal("b").set("k", 2)
    stores = {json.loads(line)["store"] for line in run("-c", "dump")[0].splitlines()}
    assert stores == {"a", "b"}


def test_every_sub_command_has_its_function() -> None:
    from keyval_backend.cli.commands import HANDLERS
    from keyval_backend.cli.options import COMMANDS

    assert list(HANDLERS) == list(COMMANDS)
