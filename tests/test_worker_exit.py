"""audit.py as a torchrun rank (RANK and WORLD_SIZE > 1 set) leaves through os._exit, skipping the
interpreter's teardown: its output must still arrive whole (flushed first) and its exit code be the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.evaluate import distributed as D

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


@pytest.mark.parametrize(("env", "rank"), [
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, (1, 2, 1)),
    ({"RANK": "3", "WORLD_SIZE": "4"}, (3, 4, 3)),                     # LOCAL_RANK defaults to RANK
    ({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}, None),       # one process: not distributed
    ({"WORLD_SIZE": "2", "LOCAL_RANK": "0"}, None), ({"RANK": "0"}, None), ({}, None),
])
def test_torchrun_rank_is_read_from_one_place(monkeypatch, env, rank):
    """audit.py's os._exit path, `eval`'s relaunch and report decisions and the process group all use it."""
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert D.torchrun_env() == rank
    assert D.is_torchrun_rank() is (rank is not None)


def test_a_malformed_torchrun_env_is_an_error_not_a_rank(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        D.torchrun_env()
    assert D.is_torchrun_rank() is False
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="outside WORLD_SIZE=2"):
        D.torchrun_env()
