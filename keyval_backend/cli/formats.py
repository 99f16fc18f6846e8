"""How ``keyval`` reads values and numbers from its flags and writes them
and its counts back."""

from __future__ import annotations

import json
from typing import Any

from .. import transfer
from .options import usage_error


def parse_json(text: str) -> Any:
    try:
        return transfer.strict_loads(text)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise usage_error(f"-V/--value is not valid JSON ({reason}): {text!r}") from None


def parse_delta(text: str | None) -> int:
    if text is None:
        return 1
    try:
        return int(text)
    except ValueError:
        raise usage_error(f"-c incr needs an integer -V/--value, not {text!r}") from None


def format_value(value: Any) -> str:
    """JSON if the value reads back exactly from it, else its repr."""
    text = transfer.exact_json(value)
    return repr(value) if text is None else text


def plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def counts(first: tuple[int, str], *rest: tuple[int, str]) -> str:
    """``"3 new, 2 replaced"``: the first count always, the others when not zero."""
    shown = [first, *(pair for pair in rest if pair[0])]
    return ", ".join(f"{count} {what}" for count, what in shown)
