"""The benchmark suite of keyval_backend: ``python -m benchmarks --help``.

KeyValCache is measured side by side with Django's DatabaseCache, django-redis,
diskcache's DjangoCache and the raw database driver running the same single
statement (the floor), one subprocess per database setting so that each gets
clean Django settings. See docs/performance.rst for what the numbers mean.
"""
