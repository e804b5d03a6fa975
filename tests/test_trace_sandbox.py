"""`audit.py trace` inside the sandbox: the five example verdicts, isolation, budget, outputs coming back,
and a static needs-review resolved (both shown) by the traced run. Each test starts one sandboxed process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from harness.report import decide_verdict  # noqa: E402
from harness.sandbox.supervisor import sandbox_available  # noqa: E402
from harness.trace.sandboxed import SandboxOptions  # noqa: E402
from harness.trace.traced_run import trace_submission  # noqa: E402
from tests.test_trace import EXAMPLE_VERDICTS, write_example_val  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "tests" / "fixtures" / "trace"
WHY = sandbox_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no sandbox here: {WHY}")


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory) -> Path:
    return write_example_val(tmp_path_factory.mktemp("trace_sbx_val"))


def _sandboxed(folder: Path, val_dir: Path, work: Path, static: bool = False, **opts):
    box = SandboxOptions(workdir=work, **{"budget": 180.0, **opts})
    sub, tl = trace_submission(folder, folder / "train_gpt.py", val_dir, static=static, sandbox=box)
    return sub, tl


@pytest.mark.parametrize("name,verdict_,rules", EXAMPLE_VERDICTS)
def test_examples_get_the_same_verdicts_through_the_sandbox(name, verdict_, rules, val_dir, tmp_path):
    sub, tl = _sandboxed(EXAMPLES / name, val_dir, tmp_path / "w")
    assert tl.val_tokens == 97 and tl.reported_score
    assert sub.verdict == verdict_ == decide_verdict(list(sub.findings))
    assert {f.rule for f in sub.findings if f.severity == "error"} == rules
    box = sub.measured["sandbox"]
    assert box["exit_code"] == 0 and box["killed_for"] is None
    assert any(lim.startswith("RLIMIT_NPROC") for lim in box["isolation"]["limits"])
    assert "net (loopback only)" in box["isolation"]["namespaces"]
    log = Path(sub.measured["trace"]["log"])
    assert log == tmp_path / "w" / "console.log" and "val_bpb:" in log.read_text()
    assert (tmp_path / "w" / "out" / "events.json").is_file()      # the child's output came back out


PROBE = '''
def _probe():
    import os, socket
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        net = "open"
    except OSError:
        net = "blocked"
    def writable(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            return "yes"
        except OSError:
            return "no"
    print("PROBE net=%s secret=%s src=%s run=%s host_repo=%s uid=%d" % (
        net, os.environ.get("GA_TRACE_SECRET"), writable("/golfaudit/harness/x.txt"), writable("probe.txt"),
        os.path.exists(HOST_PATH), os.getuid()))


_probe()
'''


def test_the_traced_process_is_isolated(val_dir, tmp_path, monkeypatch):
    sub_dir = tmp_path / "sub"
    sub_dir.mkdir()
    src = (EXAMPLES / "legal_chunked" / "train_gpt.py").read_text()
    src = src.replace("\ndef main():", PROBE.replace("HOST_PATH", repr(str(REPO / "tests"))) + "\n\ndef main():", 1)
    (sub_dir / "train_gpt.py").write_text(src)
    monkeypatch.setenv("GA_TRACE_SECRET", "hunter2")
    sub, _ = _sandboxed(sub_dir, val_dir, tmp_path / "w")
    line = [t for t in Path(sub.measured["trace"]["log"]).read_text().splitlines() if t.startswith("PROBE")][0]
    assert "net=blocked" in line and "secret=None" in line and "src=no" in line and "run=yes" in line
    assert "host_repo=False" in line and "uid=0" not in line
    assert sub.verdict == "legal"                                   # the probe does not change the order
    assert not (sub_dir / "probe.txt").exists()                      # it wrote into the copy, not the folder
    assert (tmp_path / "w" / "run" / "probe.txt").is_file()


def test_budget_kills_the_run_and_says_so(val_dir, tmp_path):
    sub_dir = tmp_path / "sub"
    sub_dir.mkdir()
    (sub_dir / "train_gpt.py").write_text(
        "import time\n\n\ndef load_validation_tokens(pattern, seq_len):\n    return None\n\n\n"
        "def main():\n    time.sleep(600)\n")
    sub, _ = _sandboxed(sub_dir, val_dir, tmp_path / "w", budget=2.0, grace=1.0)
    box = sub.measured["sandbox"]
    assert box["killed_for"] == "budget" and box["over_budget"]
    msgs = [f.message for f in sub.findings if f.rule == "TRACE"]
    assert msgs and "2 s budget" in msgs[0] and "killed by the sandbox" in msgs[0]
    assert sub.verdict == "legal"              # an incomplete trace is a warning, never a legality verdict


def test_static_needs_review_is_resolved_by_the_sandboxed_trace(val_dir, tmp_path):
    folder = EXAMPLES / "needs_review_dynamic"
    from harness.trace.traced_run import static_findings

    static = [f for f in static_findings(folder) if f.severity == "error"]
    assert [(f.rule, f.confidence) for f in static] == [("TTT-SCORE-FIRST", "low")]
    assert "audit.py trace" in static[0].message                     # the static message offers the trace
    sub, _ = _sandboxed(folder, val_dir, tmp_path / "w", static=True)
    shown = [(f.rule, f.severity, f.message.startswith("[static]"), f.suppressed) for f in sub.findings]
    assert ("TTT-SCORE-FIRST", "error", True, True) in shown         # both shown, the static one resolved
    assert ("TTT-SCORE-FIRST", "info", False, False) in shown
    assert sub.verdict == "legal" and not any(f.rule == "TRACE" for f in sub.findings)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "audit.py", "trace", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=env)


def test_cli_runs_in_the_sandbox_by_default(val_dir, tmp_path):
    out, png, work = tmp_path / "r.json", tmp_path / "t.png", tmp_path / "w"
    proc = _cli(str(EXAMPLES / "illegal_train_first"), "--data", str(val_dir), "--tokens", "64", "--no-static",
                "--workdir", str(work), "--plot", str(png), "--budget", "120", "--format", "json",
                "--output", str(out))
    assert proc.returncode == 1, proc.stderr
    sub = json.loads(out.read_text())["submissions"][0]
    assert sub["verdict"] == "illegal" and sub["measured"]["trace"]["val_tokens"] == 65
    assert sub["measured"]["sandbox"]["budget_s"] == 120
    assert sub["measured"]["trace"]["log"] == str(work / "console.log")
    assert "trace: sandbox exit=0" in proc.stderr and "RLIMIT_NPROC" in proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_unshare_names_the_problem_and_the_debug_switch(val_dir):
    env = {**os.environ, "PATH": "/nonexistent"}
    proc = _cli(str(EXAMPLES / "legal_chunked"), "--data", str(val_dir), env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unshare" in proc.stderr and "--no-sandbox" in proc.stderr


def test_a_submission_that_cannot_be_imported_is_a_message_not_a_traceback(val_dir, tmp_path):
    bad = tmp_path / "sub"
    bad.mkdir()
    (bad / "train_gpt.py").write_text("def main(:\n")
    out = tmp_path / "r.json"
    proc = _cli(str(bad), "--data", str(val_dir), "--no-static", "--format", "json", "--output", str(out),
                "--workdir", str(tmp_path / "w"))
    assert "Traceback" not in proc.stderr
    sub = json.loads(out.read_text())["submissions"][0]
    assert any(f["rule"] == "TRACE" and "SyntaxError" in f["message"] for f in sub["findings"])


def test_cli_refuses_a_used_workdir(val_dir, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "old.txt").write_text("x")
    proc = _cli(str(EXAMPLES / "legal_chunked"), "--data", str(val_dir), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2 and "not an empty folder" in proc.stderr and "Traceback" not in proc.stderr
