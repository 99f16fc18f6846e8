"""django-redis's commands beyond Django's cache API, one mixin a kind of value.

:class:`~keyval_backend.cache.KeyValCache` is composed of these mixins and the
core of the backend: ``expiry`` (ttl, expire, persist, ...), ``keys`` (glob
patterns), ``locks``, ``hashes``, ``sets`` and ``sorted_sets``. Each owns its
statements in :mod:`keyval_backend.sql.structures`; ``base`` holds what they
share (finding, creating and dropping a structure, encoding members).
"""
