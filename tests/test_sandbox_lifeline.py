"""The lifeline's parts without a sandbox: a child started with `die_with_parent` dies when its parent is
SIGKILLed (the `eval --gpus` torchrun and `trace --no-sandbox` child rely on it), and the socket carries
init's messages and shows end-of-file when the auditor's end closes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from harness.sandbox.lifeline import Lifeline

ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_child_dies_with_its_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import signal, subprocess, sys, time
        from harness.sandbox.lifeline import die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(86400)"],
                                 preexec_fn=die_with_parent(signal.SIGKILL))
        print(child.pid, flush=True)
        time.sleep(86400)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    gone = not _alive(child)
    if not gone:
        os.kill(child, signal.SIGKILL)
    assert gone


def test_the_socket_carries_init_messages_and_closes():
    line = Lifeline()
    theirs = socket.socket(fileno=os.dup(line.child_fd))
    line.handed_over()
    theirs.sendall(json.dumps({"event": "started", "monotonic": 1.5}).encode() + b"\n{\"event\": \"exi")
    assert line.events() == [{"event": "started", "monotonic": 1.5}]
    theirs.sendall(b"ted\", \"status\": -9}\nnot json\n")
    assert line.events() == [{"event": "exited", "status": -9}]
    line.cut()
    assert theirs.recv(16) == b""                # what init reads when the auditor is gone
    theirs.close()
