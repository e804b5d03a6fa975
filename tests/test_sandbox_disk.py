"""The disk cap of a sandboxed run: RLIMIT_FSIZE per file and a watchdog on everything the run writes.

Tests use a 32 MiB cap and never write more than ~90 MiB (the payloads stop themselves there).
Needs root and util-linux `unshare`; skips otherwise.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from harness.sandbox.supervisor import (
    DEFAULT_DISK_LIMIT,
    Bind,
    SandboxSpec,
    disk_usage,
    free_uid,
    interpreter_binds,
    run_sandboxed,
    sandbox_available,
    system_binds,
)

REASON = sandbox_available() if sys.platform == "linux" else "Linux only"
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"sandbox unavailable: {REASON}")
LIMIT = 32 << 20


def _spec(tmp_path: Path, code: str, **kw) -> SandboxSpec:
    run = tmp_path / "run"
    run.mkdir()
    (run / "payload.py").write_text(textwrap.dedent(code))
    uid = free_uid()
    os.chown(run, uid, uid)                       # the run's folder belongs to the sandbox user, as in prepare
    py, _ = interpreter_binds(sys.executable)
    return SandboxSpec(uid=uid, argv=[sys.executable, "payload.py"], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
                       cwd="/sandbox/run", binds=system_binds() + py + [Bind(str(run), "/sandbox/run", ro=False)],
                       workdir=tmp_path / "work", log_path=tmp_path / "work" / "console.log", use_cgroups=False,
                       budget_s=60, **kw)


def test_default_spec_caps_disk_at_8_gib():
    assert SandboxSpec(argv=[], env={}, cwd="/", binds=[], workdir=Path("."), log_path=Path("x"),
                       budget_s=1).disk_limit == DEFAULT_DISK_LIMIT == 8 << 30


def test_many_small_files_are_stopped_by_the_watchdog(tmp_path):
    result = run_sandboxed(_spec(tmp_path, """
        import os, time
        block = os.urandom(1 << 20)
        for i in range(90):                       # safety stop: never more than 90 MiB
            with open(f"fill_{i:03d}.bin", "wb") as f:
                f.write(block)
                f.flush()
                os.fsync(f.fileno())
            print("wrote MiB", i + 1, flush=True)
            time.sleep(0.02)
        print("filler finished", flush=True)
    """, disk_limit=LIMIT))
    log = Path(result.log_path).read_text()
    assert result.killed_for == "disk" and result.disk_limit_hit
    assert "filler finished" not in log and "wrote MiB 32" in log       # ran until the cap, not past the end
    assert result.disk_written > LIMIT
    assert any(lim.startswith("disk-watchdog=33554432") for lim in result.limits_applied)
    assert "RLIMIT_FSIZE=33554432 (every file the run writes)" in result.limits_applied
    files = sorted((tmp_path / "run").glob("fill_*.bin"))                # what it wrote stays readable
    assert len(files) >= 32 and files[0].read_bytes()[:16]
    assert result.leftovers_killed == 0


def test_one_growing_file_stops_at_the_per_file_limit(tmp_path):
    result = run_sandboxed(_spec(tmp_path, """
        import os, sys
        block = b"x" * (1 << 20)
        with open("model.bin", "wb", buffering=0) as f:
            for i in range(90):
                try:
                    f.write(block)
                except OSError as exc:
                    print("write refused after MiB", i, "errno", exc.errno, flush=True)
                    sys.exit(3)
        print("filler finished", flush=True)
    """, disk_limit=LIMIT))
    log = Path(result.log_path).read_text()
    assert "write refused after MiB 32 errno 27" in log                  # EFBIG at exactly the cap
    assert (tmp_path / "run" / "model.bin").stat().st_size == LIMIT
    assert result.disk_limit_hit and result.largest_file == LIMIT
    assert result.killed_for == "disk" and result.exit_code == 3


def test_shell_writer_dies_of_sigxfsz(tmp_path):
    spec = _spec(tmp_path, "")
    spec.argv = ["/bin/sh", "-c", "head -c 94371840 /dev/zero > big.bin; echo status $?"]
    spec.disk_limit = LIMIT
    result = run_sandboxed(spec)
    log = Path(result.log_path).read_text()
    assert "status 153" in log                        # 128 + SIGXFSZ: the default action, not an ignored signal
    assert (tmp_path / "run" / "big.bin").stat().st_size == LIMIT
    assert result.disk_limit_hit


def test_writes_under_the_cap_are_untouched(tmp_path):
    result = run_sandboxed(_spec(tmp_path, """
        open("small.bin", "wb").write(b"y" * (4 << 20))
        print("done", flush=True)
    """, disk_limit=LIMIT))
    assert result.exit_code == 0 and result.killed_for is None and not result.disk_limit_hit
    assert 4 << 20 <= result.disk_written < LIMIT
    assert disk_usage([str(tmp_path / "run")]).largest == 4 << 20


def test_no_cap_when_disabled(tmp_path):
    result = run_sandboxed(_spec(tmp_path, "print('ok')\n", disk_limit=None))
    assert result.exit_code == 0
    assert not any("FSIZE" in lim or "disk" in lim for lim in result.limits_applied)


def test_files_hidden_past_path_max_count_as_over_the_limit(tmp_path):
    result = run_sandboxed(_spec(tmp_path, """
        import os, time
        for _ in range(30):                      # 30 x 200 characters: past PATH_MAX (4096) from the run folder
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
        open("hidden.bin", "wb").write(b"z" * (1 << 20))
        print("hidden", flush=True)
        time.sleep(20)
        print("slept", flush=True)
    """, disk_limit=LIMIT))
    log = Path(result.log_path).read_text()
    assert "hidden" in log and "slept" not in log
    assert result.killed_for == "disk" and result.disk_limit_hit
    assert result.disk_unmeasured and "File name too long" in result.disk_unmeasured
