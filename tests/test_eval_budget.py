"""`audit.py eval`: our own eval's wall time, labelled with the hardware, checked against --eval-budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.evaluate.reference_eval import eval_time
from tests.test_eval_adapter import OLD_STYLE, ROOT, eval_case, make_submission, roundtrip, run_cli  # noqa: F401

pytest.importorskip("torch")


def test_eval_time_labels_hardware_and_estimates_8xh100():
    findings: list = []
    out = eval_time(1200.0, "fast", "1× NVIDIA H200", 1, 600.0, findings, "train_gpt.py")
    assert out["eval_seconds"].value == 1200.0 and "on 1× NVIDIA H200" in out["eval_seconds"].detail
    est = out["eval_seconds_8xh100_estimate"]
    assert est.value == 150.0 and est.detail.startswith("8xH100 ESTIMATE (not measured)")
    (f,) = findings
    assert f.rule == "EVAL-TIME-600S" and f.severity == "warning" and f.file == "train_gpt.py"
    assert "1,200.0 s on 1× NVIDIA H200" in f.message and "8xH100 ESTIMATE (not measured): 150.0 s" in f.message


def test_eval_time_on_8_h100s_is_measured_not_estimated():
    findings: list = []
    out = eval_time(420.0, "fast+ttt", "8× NVIDIA H100 80GB HBM3", 8, 600.0, findings, "t.py")
    assert "eval_seconds_8xh100_estimate" not in out and not findings
    out = eval_time(420.0, "fast", "4× NVIDIA H100 80GB HBM3", 4, 600.0, findings, "t.py")
    assert out["eval_seconds_8xh100_estimate"].value == 210.0 and not findings


def test_eval_time_on_cpu_has_no_gpu_estimate():
    findings: list = []
    out = eval_time(3.0, "exact", "CPU", 0, 600.0, findings, "t.py")
    assert set(out) == {"eval_seconds"} and not findings


def test_eval_time_keeps_a_few_milliseconds():
    # a tiny CPU eval can finish in under 5 ms: the reported time must not round that to 0
    out = eval_time(0.0034567, "fast", "CPU", 0, 600.0, [], "t.py")
    assert out["eval_seconds"].value == 0.003457


def test_cli_eval_reports_wall_time_and_budget_warning(tmp_path, eval_case):  # noqa: F811
    tok, data, _ = eval_case
    script = make_submission(tmp_path, OLD_STYLE.replace("PEEK_FLAG", "False"))
    _, _, _, art = roundtrip(script, tmp_path / "art")
    base = [str(script.parent), "--artifact", str(art), "--data", str(data), "--tokenizer", str(tok),
            "--format", "json", "--device", "cpu", "--no-checks"]
    p = run_cli(*base)
    assert p.returncode == 0, p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    wall = sub["measured"]["eval_seconds"]
    assert wall["source"] == "reproduced" and wall["detail"].endswith("eval on CPU") and wall["value"] > 0
    assert not any(f["rule"] == "EVAL-TIME-600S" for f in sub["findings"])
    p = run_cli(*base, "--eval-budget", "0.000001")
    assert p.returncode == 0, p.stderr                 # a warning: the verdict stays legal
    sub = json.loads(p.stdout)["submissions"][0]
    (f,) = [f for f in sub["findings"] if f["rule"] == "EVAL-TIME-600S"]
    assert sub["verdict"] == "legal" and f["severity"] == "warning" and "over the 1e-06 s eval budget" in f["message"]
    p = run_cli(*base, "--eval-budget", "0")
    assert p.returncode == 2 and "--eval-budget must be positive" in p.stderr
    p = run_cli(*base, "--gpus", "0")
    assert p.returncode == 2 and "--gpus must be at least 1" in p.stderr
    p = subprocess.run([sys.executable, str(ROOT / "audit.py"), "eval", *base], capture_output=True, text=True,
                       cwd=ROOT, timeout=600, env={**os.environ, "RANK": "one", "WORLD_SIZE": "2"})
    assert p.returncode == 2 and "torchrun environment: environment variable RANK='one'" in p.stderr, p.stderr


@pytest.mark.parametrize("ttt", [False, True])
def test_cli_eval_on_two_processes_equals_one(tmp_path, eval_case, ttt):  # noqa: F811
    """`--gpus 2` relaunches under torchrun (gloo on CPU); rank 0 reports the same numbers as one process."""
    tok, data, _ = eval_case
    script = make_submission(tmp_path, OLD_STYLE.replace("PEEK_FLAG", "False"))
    _, _, _, art = roundtrip(script, tmp_path / "art")
    base = [str(script.parent), "--artifact", str(art), "--data", str(data), "--tokenizer", str(tok),
            "--format", "json", "--device", "cpu", "--no-checks"] + (["--ttt", "--ttt-chunk-tokens", "128"] if ttt
                                                                     else [])
    one, two = run_cli(*base), run_cli(*base, "--gpus", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert "Traceback" not in two.stderr
    r1 = json.loads(one.stdout)["submissions"][0]["measured"]
    r2 = json.loads(two.stdout)["submissions"][0]["measured"]      # one report: rank 0's
    assert r2["reproduced"]["processes"] == 2 and r2["reproduced"]["hardware"] == "2× CPU process"
    for key in ("tokens", "bytes", "windows"):
        assert r2["reproduced"][key] == r1["reproduced"][key]
    assert r2["reproduced"]["val_bpb"] == pytest.approx(r1["reproduced"]["val_bpb"], rel=1e-6 if ttt else 1e-12)
