"""Nothing of a submission outlives the auditor, and a run that did not finish is never `legal`.

`audit.py run` and `audit.py trace` run as subprocesses of the test on a submission that ignores SIGTERM,
sleeps and forks a `setsid` child; the test signals the auditor and scans /proc: within 5 s (the product's
promise) no process of the run may remain: none carrying the submission's marker in its command line,
none running `unshare`/init on the run's spec, none running as the run's uid. Needs root and util-linux
`unshare`, as the other sandbox tests; skips otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.data.shards import write_shard
from harness.sandbox import supervisor as runner
from harness.sandbox.supervisor import (
    Bind,
    SandboxSpec,
    interpreter_binds,
    run_sandboxed,
    sandbox_available,
    system_binds,
)
from tests.conftest import TOKENIZERS

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = TOKENIZERS / "fineweb_1024_bpe.model"
REASON = sandbox_available() if sys.platform == "linux" else "Linux only"
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"sandbox unavailable: {REASON}"),
    pytest.mark.skipif(not TOKENIZER.is_file(), reason="shared tokenizer missing"),
]
STARTUP_S = 240          # generous: laying out and starting a run on a loaded 2-core machine
GONE_S = 5.0             # the product's promise: every process of the run is gone this soon after the signal

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(86400)",
                  {marker!r}], start_new_session=True)
print("child started", flush=True)
time.sleep(86400)
"""


@pytest.fixture
def data(tmp_path) -> Path:
    d = tmp_path / "data"
    write_shard(d / "fineweb_train_000000.bin", [1, 5, 6, 7] * 100)
    write_shard(d / "fineweb_val_000000.bin", [1, 8, 9] * 100)
    return d


def _folder(tmp_path: Path, code: str) -> Path:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(textwrap.dedent(code))
    return sub


def _start(command: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "audit.py"), command, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _audit(command: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "audit.py"), command, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def _run_processes(work: Path, marker: str, spared: int) -> list[str]:
    """Processes of the run still on the host: the marker's, unshare/init on the run's spec, the run's uid."""
    spec = work / "init.json"
    uid = json.loads(spec.read_text())["uid"] if spec.is_file() else None
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in (spared, os.getpid()):
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        owner = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), None)
        if marker.encode() in cmdline or str(spec).encode() in cmdline or (uid is not None and owner == uid):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
            found.append(f"{pid}: {shown}")
    return found


def _wait_until_running(proc: subprocess.Popen, work: Path, marker: str) -> None:
    deadline = time.monotonic() + STARTUP_S
    log = work / "console.log"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the auditor ended before the run started: {proc.returncode} {proc.stderr.read()[-2000:]}")
        if log.is_file() and "child started" in log.read_text() and _run_processes(work, marker, proc.pid):
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the submission did not start")


def _gone_within(work: Path, marker: str, spared: int, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        left = _run_processes(work, marker, spared)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _kill_leftovers(work: Path, marker: str, spared: int) -> None:
    """After a failure: leave no process of the run behind on the test machine."""
    for entry in _run_processes(work, marker, spared):
        try:
            os.kill(int(entry.split(":", 1)[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _signal_and_check(proc: subprocess.Popen, work: Path, marker: str, report: Path, sig: int) -> dict | None:
    _wait_until_running(proc, work, marker)
    proc.send_signal(sig)
    left = _gone_within(work, marker, proc.pid, GONE_S)
    if left:
        proc.kill()
        _kill_leftovers(work, marker, proc.pid)
    assert left == [], f"still running {GONE_S:g} s after {signal.Signals(sig).name}: {left}"
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the auditor did not exit")
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "child started" in (work / "console.log").read_text()        # the console log is kept
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return None
    assert proc.returncode == 128 + sig, stderr[-2000:]
    return json.loads(report.read_text())["submissions"][0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_run_dies_with_the_auditor(tmp_path, data, sig):
    marker = f"golfaudit-lifecycle-run-{os.getpid()}-{time.time_ns()}"
    sub = _folder(tmp_path, STUBBORN.format(marker=marker))
    work, report = tmp_path / "work", tmp_path / "report.json"
    proc = _start("run", str(sub), "--data", str(data), "--tokenizer", str(TOKENIZER), "--workdir", str(work),
                  "--format", "json", "--output", str(report))
    got = _signal_and_check(proc, work, marker, report, sig)
    if got is not None:
        run = got["measured"]["run"]
        assert run["killed_for"] == "interrupted" and run["stop_signal"] == signal.Signals(sig).name
        assert run["finished"] is False and got["verdict"] != "legal"
        assert Path(run["log"]) == work / "console.log"


def test_an_exception_in_the_auditor_takes_the_run_down(tmp_path, monkeypatch):
    marker = f"golfaudit-lifecycle-bug-{os.getpid()}-{time.time_ns()}"
    run_dir, work = tmp_path / "run", tmp_path / "work"
    run_dir.mkdir()
    (run_dir / "payload.py").write_text(STUBBORN.format(marker=marker))
    py, _ = interpreter_binds(sys.executable)
    spec = SandboxSpec(argv=[sys.executable, "payload.py"], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
                       cwd="/sandbox/run", binds=system_binds() + py + [Bind(str(run_dir), "/sandbox/run")],
                       workdir=work, log_path=work / "console.log", budget_s=600)
    real = runner._tree_usage

    def broken_once_running(uid: int):
        log = work / "console.log"
        if log.is_file() and "child started" in log.read_text():
            raise RuntimeError("a bug in the auditor")
        return real(uid)

    monkeypatch.setattr(runner, "_tree_usage", broken_once_running)
    with pytest.raises(RuntimeError, match="a bug in the auditor"):
        run_sandboxed(spec)
    left = _gone_within(work, marker, -1, GONE_S)
    _kill_leftovers(work, marker, -1)
    assert left == []


TRACED = """
import signal, subprocess, sys, time


def load_validation_tokens(pattern, seq_len):
    return None


def main():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen([sys.executable, "-c",
                      "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(86400)",
                      {marker!r}], start_new_session=True)
    print("child started", flush=True)
    time.sleep(86400)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_trace_dies_with_the_auditor(tmp_path, data, sig):
    pytest.importorskip("torch")
    marker = f"golfaudit-lifecycle-trace-{os.getpid()}-{time.time_ns()}"
    sub = _folder(tmp_path, TRACED.format(marker=marker))
    work, report = tmp_path / "work", tmp_path / "report.json"
    proc = _start("trace", str(sub), "--data", str(data), "--no-static", "--workdir", str(work),
                  "--format", "json", "--output", str(report))
    got = _signal_and_check(proc, work, marker, report, sig)
    if got is not None:
        box = got["measured"]["sandbox"]
        assert box["killed_for"] == "interrupted" and box["stop_signal"] == signal.Signals(sig).name
        assert any("stopped by" in f["message"] for f in got["findings"])


def test_training_that_never_ends_is_stopped_at_the_train_budget(tmp_path, data):
    sub = _folder(tmp_path, """
        import time
        step = 0
        while True:
            step += 1
            print(f"step:{step}/1000000 train_loss:5.0000 train_time:{step * 100}ms step_avg:100.00ms", flush=True)
            time.sleep(0.1)
    """)
    report = tmp_path / "report.json"
    done = _audit("run", str(sub), "--data", str(data), "--tokenizer", str(TOKENIZER), "--workdir",
                  str(tmp_path / "work"), "--train-budget", "5", "--eval-budget", "300", "--format", "json",
                  "--output", str(report))
    assert done.returncode == 1, done.stderr[-2000:]
    got = json.loads(report.read_text())["submissions"][0]
    run = got["measured"]["run"]
    assert run["killed_for"] == "budget" and run["budget_phase"] == "train" and run["finished"] is False
    assert run["wall_s"]["value"] <= 10                    # stopped within 10 s of the payload's start
    assert run["startup_s"]["namespace"] is not None and run["startup_s"]["prepare"] > 0
    assert run["budget_s"]["grace"] == 5.0 and run["hardware"] == "on the CPU"
    assert run["signals"]["sigterm_at_s"] >= 5
    train = [f for f in got["findings"] if f["rule"] == "TRAIN-TIME-600S" and "no end-of-training line" in f["message"]]
    assert train and train[0]["severity"] == "warning" and "on the CPU" in train[0]["message"]
    assert train[0]["file"] == "console.log" and train[0]["evidence"].startswith("step:")
    assert got["verdict"] == "needs-review"


def test_evaluation_past_its_budget_is_killed_and_says_when(tmp_path, data):
    sub = _folder(tmp_path, """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping_early: wallclock_cap train_time:100ms step:1/10", flush=True)
        time.sleep(86400)
    """)
    report = tmp_path / "report.json"
    done = _audit("run", str(sub), "--data", str(data), "--tokenizer", str(TOKENIZER), "--workdir",
                  str(tmp_path / "work"), "--train-budget", "60", "--eval-budget", "2", "--grace", "1",
                  "--format", "json", "--output", str(report))
    assert done.returncode == 1, done.stderr[-2000:]
    got = json.loads(report.read_text())["submissions"][0]
    run = got["measured"]["run"]
    assert run["killed_for"] == "budget" and run["budget_phase"] == "eval"
    term, kill = run["signals"]["sigterm_at_s"], run["signals"]["sigkill_at_s"]
    assert term is not None and kill is not None and kill >= term + 1.0      # SIGTERM was ignored: SIGKILL
    assert run["budget_s"]["grace"] == 1.0
    assert any(f["rule"] == "EVAL-TIME-600S" and "SIGKILL at" in f["message"] for f in got["findings"])
    assert got["verdict"] != "legal" and "did not finish" in done.stderr


def test_a_crash_is_not_legal(tmp_path, data):
    sub = _folder(tmp_path, """
        print("step:1/10 train_loss:5.0000 train_time:100ms step_avg:100.00ms", flush=True)
        raise RuntimeError("boom")
    """)
    report = tmp_path / "report.json"
    done = _audit("run", str(sub), "--data", str(data), "--tokenizer", str(TOKENIZER), "--workdir",
                  str(tmp_path / "work"), "--format", "json", "--output", str(report))
    assert done.returncode == 1, done.stderr[-2000:]
    got = json.loads(report.read_text())["submissions"][0]
    run = got["measured"]["run"]
    assert run["ending"] == "crashed" and "exit code 1" in run["ending_detail"] and run["payload_status"] == 1
    assert got["verdict"] == "needs-review"
    assert any("did not finish" in f["message"] and "exit code 1" in f["message"] for f in got["findings"])
