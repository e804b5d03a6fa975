"""Stop requests: SIGINT (Ctrl-C), SIGTERM (a CI job's timeout) and SIGHUP end a sandboxed run at once.

`audit.py run` and `audit.py trace` install the handlers with `stop_on_signals()`. While the runner is
watching a sandbox (`watching()`), a signal only records the request: the runner's loop sees it within a
poll interval, kills every process of the run and returns a result with `killed_for: interrupted`, so the
command still writes a partial report. Outside that window (laying the run out, writing the report) the
handler raises `Interrupted`, which, like KeyboardInterrupt, passes every `except Exception`.

The exit status is the shell's for a death by that signal: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The auditor was told to stop by `signum`; `exit_status` is 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


class _State:
    signum: int | None = None
    watchers: int = 0


_state = _State()
_lock = threading.Lock()


def exit_status(signum: int) -> int:
    return 128 + signum


def requested() -> int | None:
    """The signal that asked the auditor to stop (the first one), or None."""
    return _state.signum


def signal_name(signum: int | None) -> str | None:
    return signal.Signals(signum).name if signum else None


def _handle(signum: int, _frame: object) -> None:
    if _state.signum is None:
        _state.signum = signum
    if _state.watchers == 0:
        raise Interrupted(_state.signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install the stop handlers for the duration (main thread only; elsewhere a no-op). A SIGINT the shell
    set to be ignored (a job started with `&`) is handled too: Ctrl-C, or `kill -INT`, always stops a run.
    The request is forgotten on leaving: read `requested()` inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handle) for sig in STOP_SIGNALS}
    _state.signum = None
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.signum = None                 # read `requested()` inside the block; a later run starts afresh


@contextmanager
def watching() -> Iterator[None]:
    """While inside, a stop signal only records the request; the caller polls `requested()` and acts."""
    with _lock:
        _state.watchers += 1
    try:
        yield
    finally:
        with _lock:
            _state.watchers -= 1
