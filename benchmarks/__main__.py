"""``python -m benchmarks``: see :mod:`benchmarks.run`; with ``--structures``,
:mod:`benchmarks.structures` (which uses the run's plan, so it is chosen here);
with ``--near``, :mod:`benchmarks.near`."""

from __future__ import annotations

import sys

if "--structures" in sys.argv[1:]:
    from .structures import main

    raise SystemExit(main([arg for arg in sys.argv[1:] if arg != "--structures"]))

if "--near" in sys.argv[1:]:
    from .near import main

    raise SystemExit(main([arg for arg in sys.argv[1:] if arg != "--near"]))

from .run import main

raise SystemExit(main())
