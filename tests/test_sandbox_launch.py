"""How a submission says it is launched (README / run script), and the wallclock-cap reading."""

from __future__ import annotations

from pathlib import Path

from harness.logs import parse_log_text
from harness.sandbox.launch import launch_plan, wallclock_cap
from harness.sandbox.outcome import estimate_8xh100
from harness.submission import Submission
from tests.conftest import pg_repo, requires_pg_repo


def _sub(tmp_path: Path, files: dict[str, str]) -> Submission:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return Submission(tmp_path, str(tmp_path))


def test_readme_block_with_continuations_exports_and_eval_only_variant(tmp_path):
    readme = """# run
```bash
export NUM_LAYERS=11
SEED=42
EVAL_ONLY_PATH=runs/x.pt torchrun --standalone --nproc_per_node=8 train_gpt.py
DATA_PATH=/root/data/fineweb10B_sp1024 \\
RUN_ID=mine ARTIFACT_DIR="runs/s${SEED}" SEED=$SEED MAX_WALLCLOCK_SECONDS=600 \\
  torchrun --standalone --nproc_per_node=8 records/x/train_gpt.py
```
"""
    plan = launch_plan(_sub(tmp_path, {"README.md": readme, "train_gpt.py": "x = 1\n"}))
    assert plan.script == "train_gpt.py" and plan.nproc == 8 and plan.source == "README.md:6"
    assert plan.env == {"ARTIFACT_DIR": "runs/s42", "SEED": "42", "MAX_WALLCLOCK_SECONDS": "600"}
    assert plan.dropped == {"DATA_PATH": "/root/data/fineweb10B_sp1024", "RUN_ID": "mine"}


def test_inline_code_and_run_script(tmp_path):
    plan = launch_plan(_sub(tmp_path, {"README.md": "Run `VOCAB_SIZE=8192 python3 train_gpt.py` please.\n",
                                       "train_gpt.py": "x = 1\n"}))
    assert plan.env == {"VOCAB_SIZE": "8192"} and plan.nproc is None
    other = tmp_path / "other"
    other.mkdir()
    plan = launch_plan(_sub(other, {"run.sh": "#!/bin/sh\nITERATIONS=9 torchrun --nproc_per_node 1 train_x.py\n",
                                    "train_x.py": "x = 1\n"}))
    assert plan.script == "train_x.py" and plan.env == {"ITERATIONS": "9"} and plan.nproc == 1


def test_no_documented_launch_falls_back_to_the_script(tmp_path):
    plan = launch_plan(_sub(tmp_path, {"train_gpt.py": "x = 1\n", "README.md": "no command here\n"}))
    assert plan.script == "train_gpt.py" and plan.env == {} and plan.source == ""


def test_wallclock_cap_default():
    assert wallclock_cap('m = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))') == 600.0
    assert wallclock_cap("m = float(os.environ.get('MAX_WALLCLOCK_SECONDS', '6e2'))") == 600.0
    assert wallclock_cap("iterations = 20000") is None


def test_estimate_is_labelled_and_scaled():
    log = parse_log_text("step:86/20000 val_loss:4.3 val_bpb:3.7 train_time:30147ms step_avg:350.54ms\n", "x")
    est = estimate_8xh100(log, gpus=1)
    assert est["label"].startswith("ESTIMATE")
    assert abs(est["measured_step_ms"].value - 350.55) < 0.01
    assert abs(est["estimated_8xh100_step_ms"] - 350.55 / 8) < 0.01
    assert estimate_8xh100(log, gpus=8) is None


@requires_pg_repo
def test_real_records_launch_lines():
    records = pg_repo() / "records" / "track_10min_16mb"
    base = launch_plan(Submission(records / "2026-03-17_NaiveBaseline", "nb"))
    assert base.source.startswith("README.md") and base.nproc == 8
    assert base.env["MAX_WALLCLOCK_SECONDS"] == "600" and "DATA_PATH" in base.dropped
    varlen = launch_plan(Submission(records / "2026-04-10_VarLenAttn", "vl"))
    assert varlen.env == {"ARTIFACT_DIR": "runs/varlen0", "SEED": "0"}
