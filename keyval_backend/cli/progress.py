"""The progress bar of the long sub-commands (list, purge, dump, load,
import, resign), drawn on an interactive stderr only."""

from __future__ import annotations

import time

from django.core.management.base import OutputWrapper


class Progress:
    """A one-line progress bar redrawn in place on an interactive stderr, at
    most ten times a second."""

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, label: str, total: int | None) -> None:
        self.stream, self.label, self.total = stream, label, total
        self.drawn = 0.0
        self.width = 0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.drawn < 0.1:
            return
        self.drawn = now
        if self.total:
            filled = min(self.WIDTH, self.WIDTH * done // self.total)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"{self.label} [{bar}] {min(100, 100 * done // self.total):3d}% "
            text += f"{done:,}/{self.total:,}"
        else:
            text = f"{self.label} {done:,}"
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text.ljust(self.width), style_func=str, ending="")
        self.stream.flush()

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r", style_func=str, ending="")
            self.stream.flush()


class NoProgress(Progress):
    """The progress bar of a command whose stderr is not a terminal."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, done: int) -> None:
        return None
