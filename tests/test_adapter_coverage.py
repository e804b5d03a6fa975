"""Adapter coverage (`scripts/gpu_eval_coverage.py --one`, CPU) when a record's own serialize fails in its
linear algebra (2026-03-25 ValCalib: GPTQ's Cholesky on random weights and a cut-down calibration): one
retry with more calibration tokens, else an "environment limitation" reason, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from tests.conftest import ROOT  # noqa: E402
from tests.test_eval_adapter import NEW_STYLE, make_submission  # noqa: E402

# a calibration generator with the records' knobs, and a GPTQ-like factorisation of the Hessian it gives:
# rows = num_seqs * seq_len // 8, so the coverage caps (2 x 64) give 16 rows for 64 columns (rank-deficient,
# shifted to be indefinite) and the retry (8 x 256) 256 rows (positive-definite)
CALIB = '''
def generate_autoregressive_calib(model, device, num_seqs=64, seq_len=2048, batch_size=8):
    g = torch.Generator().manual_seed(0)
    return torch.randn(num_seqs * seq_len // 8, 64, generator=g)

def gptq_factor(rows):
    H = rows.T @ rows / rows.shape[0] - 1e-3 * torch.eye(rows.shape[1])
    return torch.linalg.cholesky(H)

def serialize(h, base_model, code):
    gptq_factor(generate_autoregressive_calib(base_model, "cpu"))
'''


def coverage_one(script) -> dict:
    env = dict(os.environ, GA_DEVICE="cpu", GA_COVERAGE_LEN="32", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_eval_coverage.py"), "--one", str(script)],
                       capture_output=True, text=True, cwd=script.parent, env=env, timeout=300)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("COVERAGE ")), None)
    assert line, p.stderr[-2000:]
    return json.loads(line[len("COVERAGE "):])


def with_serialize(prefix: str) -> str:
    """NEW_STYLE with `prefix` run at the top of its own serialize()."""
    src = NEW_STYLE.replace("def serialize(h, base_model, code):\n",
                            "def serialize(h, base_model, code):\n    _own_serialize_prefix(base_model)\n")
    return src + CALIB.replace("def serialize(h, base_model, code):\n    ", "def _own_serialize_prefix(base_model):\n    "
                               + prefix)


def test_linalg_failure_with_the_small_calibration_is_retried(tmp_path):
    rec = coverage_one(make_submission(tmp_path, with_serialize("")))
    assert rec["ok"], rec
    assert "gptq_factor" in rec["calibration_retry"] and "'num_seqs': 8" in rec["calibration_retry"]


def test_linalg_failure_that_persists_is_an_environment_limitation(tmp_path):
    always = "torch.linalg.cholesky(-torch.eye(4))\n    "
    rec = coverage_one(make_submission(tmp_path, with_serialize(always)))
    assert rec["ok"] is False
    assert rec["reason"].startswith("environment limitation: the record's own _own_serialize_prefix (train_gpt.py:")
    assert "not an adapter failure" in rec["reason"] and "Traceback" not in rec["reason"]
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_eval_coverage
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert gpu_eval_coverage.reason_class(rec["reason"]) == "environment limitation"


def test_other_serialize_errors_are_not_called_limitations(tmp_path):
    rec = coverage_one(make_submission(tmp_path, with_serialize("raise KeyError('w')\n    ")))
    assert rec["ok"] is False and rec["reason"].startswith("KeyError")
