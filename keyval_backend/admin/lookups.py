"""Searching the binary name columns byte for byte, on every database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BinaryField, F, Lookup, Value
from django.db.models.sql.compiler import SQLCompiler

from ..identity import encode_name

if TYPE_CHECKING:  # Lookup is generic for type checkers only.
    _BoolLookup = Lookup[bool]
else:
    _BoolLookup = Lookup


class BytesContains(_BoolLookup):
    """``lhs`` (a binary column) contains the bytes ``rhs``, compared byte
    for byte: no LIKE, so ``%`` and ``_`` are plain characters, and no
    collation, so case and accents count."""

    lookup_name = "keyval_bytes_contains"

    def _operands(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any], str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return lhs, list(lhs_params), rhs, list(rhs_params)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        raise NotSupportedError(f"no byte substring search on {connection.vendor}")

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params, rhs, rhs_params = self._operands(compiler, connection)
        return f"instr({lhs}, {rhs}) > 0", [*lhs_params, *rhs_params]

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params, rhs, rhs_params = self._operands(compiler, connection)
        return f"position({rhs} in {lhs}) > 0", [*rhs_params, *lhs_params]

    def as_mysql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, lhs_params, rhs, rhs_params = self._operands(compiler, connection)
        return f"LOCATE({rhs}, {lhs}) > 0", [*rhs_params, *lhs_params]


def key_contains(text: str) -> BytesContains:
    """The condition "the stored key contains ``text``"."""
    return BytesContains(F("key"), Value(encode_name(text), output_field=BinaryField()))
