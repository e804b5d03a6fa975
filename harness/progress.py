"""Progress of a batch on standard error: a rich bar on a terminal, a plain line every N items otherwise.

Standard output carries only the report, so a pipe or `--output` file is never mixed with progress.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

PLAIN_EVERY = 10     # a line every this many items when standard error is not a terminal


class BatchProgress:
    """Call with (done, total, name) after each item; `close()` when the batch ends."""

    def __init__(self, label: str, stream: TextIO | None = None, every: int = PLAIN_EVERY,
                 terminal: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.every = max(1, every)
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._bar = None
        self._task = None

    def __call__(self, done: int, total: int, name: str) -> None:
        if self.terminal:
            self._rich(done, total, name)
        elif done % self.every == 0 or done == total:
            print(f"golfaudit: {self.label} {done}/{total}", file=self.stream, flush=True)

    def _rich(self, done: int, total: int, name: str) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn(f"{self.label}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.description}"),
                                 console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done, description=name[-60:])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def batch_progress(label: str, total: int, enabled: bool = True) -> BatchProgress | None:
    """A progress reporter for a batch of `total` items, or None for a single item or when disabled."""
    if not enabled or total < 2:
        return None
    return BatchProgress(label)


ProgressFn = Callable[[int, int, str], None]
