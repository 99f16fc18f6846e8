"""Fetch Django's own cache tests for the installed Django, at test time.

Django's test suite is not in its wheel, and its files may not be copied into
this repository, so they come from the source distribution of the very
version installed (the tests must match the ``BaseCache`` they exercise):
``pip download`` fetches the sdist once into a per-user cache, and the
``tests/cache/`` package is unpacked into a git-ignored directory next to
this file. Run ``python -m tests.django_suite.fetch`` to fetch ahead of time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import django

EXTRACT_ROOT = Path(__file__).resolve().parent / "_django_cache_tests"
# The directory of the Django source tree that is unpacked: one flat package.
SUITE_PACKAGE = ("tests", "cache")


class FetchError(RuntimeError):
    """Django's cache tests could not be had for this Django version."""


def sdist_cache_dir(version: str) -> Path:
    """Where the sdist of ``version`` is kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keyval_backend" / "django-src" / version


def download_sdist(version: str) -> Path:
    """The sdist of Django ``version``, downloaded from the package index
    unless an earlier run already did. Written under a temporary name and
    renamed, so parallel runs never see half a file."""
    directory = sdist_cache_dir(version)
    sdist = directory / f"django-{version}.tar.gz"
    if sdist.is_file():
        return sdist
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"django=={version}", "-d", tmp,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        tarballs = list(Path(tmp).glob("*.tar.gz"))
        if result.returncode or len(tarballs) != 1:
            output = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise FetchError(
                f"`{' '.join(command)}` exited {result.returncode} with "
                f"{len(tarballs)} sdist(s):\n" + "\n".join(output)
            )
        os.replace(tarballs[0], sdist)
    return sdist


def extract_suite(sdist: Path, target: Path) -> None:
    """Unpack the files of ``tests/cache/`` from ``sdist`` into ``target``.

    Only plain files directly in that directory are taken, each written from
    its bytes under its bare name, so no member can land outside ``target``.
    """
    target.mkdir(parents=True)
    found = 0
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) != 4 or parts[1:3] != SUITE_PACKAGE:
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            (target / parts[3]).write_bytes(source.read())
            found += 1
    if not (target / "tests.py").is_file():
        raise FetchError(f"{sdist} has no tests/cache/tests.py ({found} files found)")


def ensure_django_cache_tests(version: str = django.__version__) -> Path:
    """The directory to put on ``sys.path`` so that ``import cache.tests``
    imports Django's cache tests of ``version``, fetching them if needed."""
    root = EXTRACT_ROOT / version
    if (root / "cache" / "tests.py").is_file():
        return root
    sdist = download_sdist(version)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        extract_suite(sdist, staging / "cache")
        try:
            (staging / "cache").rename(root / "cache")
        except OSError:
            # A parallel run got there first; its copy is the same.
            if not (root / "cache" / "tests.py").is_file():
                raise
    except (OSError, tarfile.TarError) as exc:
        raise FetchError(f"cannot unpack Django's cache tests from {sdist}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


if __name__ == "__main__":
    print(ensure_django_cache_tests())
