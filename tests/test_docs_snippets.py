"""The Python code of docs/quickstart.rst and README.rst runs as written, and
the tests docs/guarantees.rst cites exist.

The blocks of a page run in order in one namespace, as a reader pasting them
one after another would run them, against the test database. Settings
snippets (``INSTALLED_APPS = [...]``, ``CACHES = {...}``) are only compiled:
they describe a project's settings module, which the test settings already
are. A Python block followed by a ``text`` block documents its output, which
must then be exactly what the block prints.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import LazySettings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.rst"
README = ROOT / "README.rst"
GUARANTEES = ROOT / "docs" / "guarantees.rst"

DIRECTIVE = re.compile(r"^(?P<indent>[ ]*)\.\. code-block:: *(?P<language>\S+)[ ]*$")
SETTINGS_SNIPPET = re.compile(r"^(INSTALLED_APPS|CACHES) *=", re.MULTILINE)
# A test named by the docs: ``tests/test_x.py::test_name``, on one line.
TEST_REFERENCE = re.compile(r"``(tests/[\w/]+\.py)::(\w+)``")
# Anything that looks like one, to catch a reference the pattern above misses.
TEST_REFERENCE_LIKE = re.compile(r"tests/\S*::")


@dataclass
class Block:
    language: str
    code: str
    line: int  # of the directive, 1-based, for failure messages


def code_blocks(path: Path) -> list[Block]:
    """Every ``.. code-block::`` of an RST file, in order, its body dedented.

    The body is the run of lines indented deeper than the directive, after
    the directive's own options (``:caption:`` and the like)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        body: list[str] = []
        for following in lines[number + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        while body and (not body[0].strip() or body[0].lstrip().startswith(":")):
            body.pop(0)
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        blocks.append(Block(match["language"], code, number + 1))
    return blocks


def run_page(path: Path, capsys: pytest.CaptureFixture[str]) -> int:
    """Run the Python blocks of ``path``; returns how many ran (not compiled only)."""
    blocks = code_blocks(path)
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    ran = 0
    for index, block in enumerate(blocks):
        if block.language != "python":
            continue
        where = f"{path.name}:{block.line}"
        compiled = compile(block.code, where, "exec")
        if SETTINGS_SNIPPET.search(block.code):
            continue
        capsys.readouterr()
        exec(compiled, namespace)
        ran += 1
        printed = capsys.readouterr().out
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if following is not None and following.language == "text":
            assert printed == following.code, f"{where} printed something else than documented"
    return ran


@pytest.fixture
def configured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the quickstart's script call ``settings.configure()``.

    pytest-django has configured the test settings already, and a second
    ``configure()`` raises; the script's own settings (an SQLite file) are
    checked by :func:`test_quickstart_script_as_a_file` instead."""

    def configure(self: LazySettings, default_settings: Any = None, **options: Any) -> None:
        assert "keyval_backend" in options["INSTALLED_APPS"]

    monkeypatch.setattr(LazySettings, "configure", configure)


@pytest.mark.usefixtures("db", "configured_once")
def test_quickstart_snippets_run(capsys: pytest.CaptureFixture[str]) -> None:
    # The in-memory script and the facade example; the settings.py block is compiled.
    assert run_page(QUICKSTART, capsys) == 2


@pytest.mark.usefixtures("db")
def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # The example and its django-redis part; the CACHES block is compiled.
    assert run_page(README, capsys) == 2


def test_quickstart_script_as_a_file(tmp_path: Path) -> None:
    """The "try it without a project" script, saved to a file and run with
    ``python`` in a fresh process, settings and all, prints its documented
    output. It makes its own SQLite database whatever the test database is,
    so one run of the suite (the SQLite one) is enough."""
    if connection.vendor != "sqlite":
        pytest.skip("the script makes its own SQLite database: checked on the SQLite run")
    blocks = code_blocks(QUICKSTART)
    index = next(
        i for i, b in enumerate(blocks) if b.language == "python" and "settings.configure" in b.code
    )
    script, output = blocks[index], blocks[index + 1]
    assert output.language == "text"
    (tmp_path / "demo.py").write_text(script.code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "demo.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == output.code
    assert (tmp_path / "keyval-demo.sqlite3").exists()


def module_tests(path: Path) -> set[str]:
    """The test functions pytest collects from a module's top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_guarantees_cite_tests_that_exist() -> None:
    """Every ``tests/FILE.py::TEST`` of docs/guarantees.rst is a test of that
    file, so that the page cannot go on citing a test renamed or removed."""
    text = GUARANTEES.read_text(encoding="utf-8")
    references = TEST_REFERENCE.findall(text)
    assert len(references) >= 50, "the page's references no longer match the pattern"
    assert len(TEST_REFERENCE_LIKE.findall(text)) == len(references), "a malformed reference"
    missing = []
    for path, name in references:
        module = ROOT / path
        if not module.is_file() or name not in module_tests(module):
            missing.append(f"{path}::{name}")
    assert missing == []
