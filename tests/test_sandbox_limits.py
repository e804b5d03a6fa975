"""Limits without cgroups (RLIMIT_NPROC for the unprivileged uid, the RSS watchdog), straight on the runner."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness.sandbox.supervisor import (
    Bind,
    SandboxSpec,
    interpreter_binds,
    run_sandboxed,
    sandbox_available,
    system_binds,
)

REASON = sandbox_available() if sys.platform == "linux" else "Linux only"
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"sandbox unavailable: {REASON}")


def _spec(tmp_path: Path, code: str, **kw) -> SandboxSpec:
    run = tmp_path / "run"
    run.mkdir()
    (run / "payload.py").write_text(textwrap.dedent(code))
    py, _ = interpreter_binds(sys.executable)
    return SandboxSpec(argv=[sys.executable, "payload.py"], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
                       cwd="/sandbox/run", binds=system_binds() + py + [Bind(str(run), "/sandbox/run")],
                       workdir=tmp_path / "work", log_path=tmp_path / "work" / "console.log", use_cgroups=False,
                       **kw)


def test_rss_watchdog_kills_memory_hog_without_cgroups(tmp_path):
    spec = _spec(tmp_path, """
        import time
        chunks = []
        for i in range(64):
            chunks.append(bytearray(b"x" * (32 << 20)))
            print("allocated MiB", (i + 1) * 32, flush=True)
            time.sleep(0.05)
    """, budget_s=30, max_memory=256 << 20)
    result = run_sandboxed(spec)
    assert any(limit.startswith("rss-watchdog") for limit in result.limits_applied)
    assert not any(limit.startswith("cgroup") for limit in result.limits_applied)
    assert result.killed_for == "memory" and result.memory_limit_hit
    assert "allocated MiB 1024" not in Path(result.log_path).read_text()


def test_rlimit_nproc_binds_the_unprivileged_uid(tmp_path):
    spec = _spec(tmp_path, """
        import os, time
        kids = 0
        try:
            while kids < 500:
                if os.fork() == 0:
                    time.sleep(30); os._exit(0)
                kids += 1
        except OSError as exc:
            print("refused after", kids, type(exc).__name__, flush=True)
        time.sleep(1)
    """, budget_s=20, max_tasks=24)
    result = run_sandboxed(spec)
    log = Path(result.log_path).read_text()
    assert "refused after" in log
    kids = int(log.split("refused after")[1].split()[0])
    assert kids < 24
    assert result.task_limit_hit
    assert result.killed_for is None and result.leftovers_killed == 0


def test_flooding_output_is_capped_and_never_blocks(tmp_path):
    spec = _spec(tmp_path, """
        import sys
        sys.stdout.write("x" * (5 << 20))            # one 5 MiB line without a newline
        for _ in range(200):
            print("y" * 10000)
        print("done")
    """, budget_s=30, max_log_bytes=64 << 10)
    result = run_sandboxed(spec)
    assert result.exit_code == 0 and result.killed_for is None
    assert result.log_truncated
    assert Path(result.log_path).stat().st_size <= 64 << 10
