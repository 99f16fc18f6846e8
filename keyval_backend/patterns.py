"""Redis glob patterns: ``*``, ``?``, ``[abc]``, ``[^a]``, ``[a-z]`` and ``\\``.

A pattern is matched against the key as the user wrote it. Its literal head
(everything before the first special character) becomes a range of the key
index, so ``user:*`` reads only the keys that start with ``user:``; the rest
is a regular expression applied to the keys of that range.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SPECIAL = "*?[\\"


def glob_escape(text: str) -> str:
    """``text`` as a pattern that matches exactly ``text``."""
    return "".join(f"\\{char}" if char in _SPECIAL else char for char in text)


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> tuple[str, re.Pattern[str]]:
    """``(literal head, regular expression of the whole pattern)``.

    Raises TypeError for a pattern that is not a str and ValueError for an
    unterminated ``[`` (Redis matches it as best it can; a typo there would
    silently match other keys, or delete them with ``delete_pattern``).
    """
    if not isinstance(pattern, str):
        raise TypeError(f"key patterns are str, not {type(pattern).__name__}")
    regex: list[str] = []
    head: list[str] = []
    literal = True
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            regex.append(re.escape(pattern[i + 1]))
            if literal:
                head.append(pattern[i + 1])
            i += 2
            continue
        if char == "*":
            regex.append(".*")
        elif char == "?":
            regex.append(".")
        elif char == "[":
            end, body = _char_class(pattern, i)
            regex.append(body)
            i = end
            literal = False
            continue
        else:
            regex.append(re.escape(char))
            if literal:
                head.append(char)
            i += 1
            continue
        literal = False
        i += 1
    return "".join(head), re.compile("".join(regex), re.DOTALL)


def _char_class(pattern: str, start: int) -> tuple[int, str]:
    """The index after the class that opens at ``start``, and its regex."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    items: list[str] = []
    while i < len(pattern) and pattern[i] != "]":
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            items.append(re.escape(pattern[i + 1]))
            i += 2
        elif i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            low, high = sorted((char, pattern[i + 2]))
            items.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            items.append(re.escape(char))
            i += 1
    if i >= len(pattern):
        raise ValueError(f"invalid key pattern {pattern!r}: '[' at {start} is never closed")
    if not items:
        # "[]" matches nothing, "[^]" anything, as in Redis.
        return i + 1, "." if negate else "(?!)"
    return i + 1, f"[{'^' if negate else ''}{''.join(items)}]"
