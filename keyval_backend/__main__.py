"""``python -m keyval_backend`` and the ``keyval`` console script: the
stand-alone command (see :mod:`keyval_backend.standalone`)."""

from __future__ import annotations

import sys


def main() -> None:
    from .standalone import run

    run(sys.argv[1:])


if __name__ == "__main__":
    main()
