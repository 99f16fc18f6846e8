"""PostgreSQL: the shared ``ON CONFLICT ... RETURNING`` statements as they are.

``INSERT ... ON CONFLICT DO UPDATE`` is guaranteed by PostgreSQL to either
insert or update under any concurrency, and ``DELETE ... RETURNING`` makes pop
a single atomic statement.
"""

from __future__ import annotations

from .base import Dialect


class PostgreSQLDialect(Dialect):
    """PostgreSQL needs nothing beyond the shared statements."""
