"""What ties a sandbox's life to the auditor's, by kernel mechanisms that work even when the auditor is
killed with SIGKILL and runs no cleanup of its own:

- `die_with_parent(sig)`: a `preexec_fn` that sets PR_SET_PDEATHSIG, so the child (`unshare`, `torchrun`)
  gets `sig` when the thread that started it dies. `unshare --kill-child` passes it on to the namespace's
  init, and the death of a PID namespace's init makes the kernel SIGKILL every process in the namespace;
- `Lifeline`: a socket pair. The auditor holds one end, the sandbox's init the other; init watches its end
  and, when it reads end-of-file (every copy of the auditor's end is closed: the auditor exited or died),
  kills the namespace. Init also reports on it when the payload started and how it ended.

Standard library only (the eval path imports `die_with_parent` too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)   # loaded before any fork


def die_with_parent(sig: int = signal.SIGKILL, then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A `preexec_fn`: the child gets `sig` when its parent dies (also if the parent died before this ran)."""
    parent = os.getpid()

    def preexec() -> None:
        if then is not None:
            then()
        if _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:           # the parent died between fork and prctl: nobody would tell us
            os.kill(os.getpid(), sig)
            os._exit(126)

    return preexec


class Lifeline:
    """The auditor's end and the end handed to the sandbox's init (`child_fd`, passed with `pass_fds`)."""

    def __init__(self) -> None:
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ours.setblocking(False)
        self._buffer = b""

    @property
    def child_fd(self) -> int:
        return self._theirs.fileno()

    def handed_over(self) -> None:
        """Close our copy of init's end once init holds it (else init's end-of-file would never come)."""
        self._theirs.close()

    def events(self) -> list[dict[str, Any]]:
        """The messages init sent since the last call (non-blocking)."""
        try:
            while chunk := self._ours.recv(65536):
                self._buffer += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return []
        *lines, self._buffer = self._buffer.split(b"\n")
        out = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                out.append(message)
        return out

    def cut(self) -> None:
        """Close our end: init reads end-of-file and kills the namespace."""
        self._ours.close()
        if self._theirs.fileno() != -1:
            self._theirs.close()
