"""The progress bar of the long sub-commands (list, purge, dump, load,
import, resign): tqdm's, drawn on an interactive stderr only.

tqdm rather than a bar of our own: it gives the rate and the time left, which
is what a user watching a dump of a million entries wants to know, fits the
terminal's width, and is the bar Python users already know.
"""

from __future__ import annotations

from django.core.management.base import OutputWrapper
from tqdm import tqdm

# What each sub-command counts, by its label.
UNITS = {"list": "keys", "load": "lines", "import": "rows"}


class _Bar(tqdm):  # type: ignore[type-arg]
    # No monitor thread: the bar is redrawn by the updates, which come often.
    monitor_interval = 0


class _Stream:
    """``stream`` written as it is: OutputWrapper would end each redraw
    with a newline."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """A bar of ``done`` out of ``total`` (None: unknown, a count alone),
    redrawn in place at most ten times a second."""

    def __init__(self, stream: OutputWrapper, label: str, total: int | None) -> None:
        self.bar = _Bar(
            total=total or None,
            desc=label,
            unit=f" {UNITS.get(label, 'entries')}",
            file=_Stream(stream),
            mininterval=0.1,
            dynamic_ncols=True,
            leave=False,
        )
        self.done = 0

    def __call__(self, done: int) -> None:
        self.bar.update(done - self.done)
        self.done = done

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def clear(self) -> None:
        """Take the bar off the screen before a message; the next update
        draws it again."""
        self.bar.clear()

    def close(self) -> None:
        """Take the bar off the screen for good."""
        self.bar.close()


class NoProgress(Progress):
    """The progress bar of a command whose stderr is not a terminal."""

    def __init__(self) -> None:
        pass

    def __call__(self, done: int) -> None:
        return None

    def clear(self) -> None:
        return None

    def close(self) -> None:
        return None
