"""audit.py as a torchrun rank (LOCAL_RANK and WORLD_SIZE > 1 set) leaves through os._exit, skipping the
interpreter's teardown: its output must still arrive whole (flushed first) and its exit code be the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import audit

ROOT = Path(__file__).resolve().parents[1]
SUB = ROOT / "submissions" / "track_10min_16mb" / "2026-04-21_Oversize"


def _check(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK", "PYTHONUNBUFFERED")}
    return subprocess.run([sys.executable, str(ROOT / "audit.py"), "check", str(SUB), "--format", "text"],
                          capture_output=True, text=True, cwd=ROOT, env={**base, **env}, timeout=300)


def test_a_torchrun_rank_prints_its_whole_report_and_keeps_the_exit_code():
    plain = _check({})
    rank = _check({"LOCAL_RANK": "1", "WORLD_SIZE": "2", "RANK": "1"})
    assert plain.returncode == rank.returncode == 1, (plain.stderr, rank.stderr)   # illegal (over 16 MB): exit 1
    assert rank.stdout == plain.stdout and "summary: illegal=1" in rank.stdout   # 2.6 kB: lost unless flushed
    assert "Traceback" not in rank.stderr


@pytest.mark.parametrize(("env", "worker"), [
    ({"LOCAL_RANK": "0", "WORLD_SIZE": "2"}, True), ({"LOCAL_RANK": "0", "WORLD_SIZE": "1"}, False),
    ({"WORLD_SIZE": "2"}, False), ({"LOCAL_RANK": "0"}, False), ({}, False),
])
def test_torchrun_worker(monkeypatch, env, worker):
    for key in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert audit.torchrun_worker() is worker
