"""harness.scan.config: defaults from code, overrides from README / run scripts / logs, branch state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.context import AuditContext
from harness.scan.config import UNKNOWN, branch_state, enabled_by_default, enabled_by_run, resolve_settings
from harness.submission import Submission
from tests.conftest import pg_repo, requires_pg_repo

SCRIPT = '''\
import os
class Hyperparameters:
    seed = int(os.environ.get("SEED", 1337))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))
    etlb_enabled = bool(int(os.environ.get("ETLB_ENABLED", "0")))
    ttt_lr = float(os.environ.get("TTT_LR", 0.005))
    compressor = os.environ.get("COMPRESSOR", "brotli")
    eval_stride = 64
    data_dir = os.environ.get("DATA_DIR", "./data/")
    mode = os.environ.get("MODE", "fast").lower() == "slow"
SLOT_ENABLED = int(os.getenv("SLOT_ENABLED", "1"))

def main():
    args = Hyperparameters()
    if args.ttt_enabled and args.seed > 0:
        pass
    if int(os.environ.get("INLINE_FLAG", "0")):
        pass
'''


def make(tmp_path: Path, files: dict[str, str]) -> Submission:
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_X"
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return Submission(root, root.name)


def expr(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def test_defaults_are_converted_like_the_script(tmp_path):
    s = resolve_settings(AuditContext(make(tmp_path, {"train_gpt.py": SCRIPT})))
    assert s["SEED"].default == 1337 and s["seed"].default == 1337
    assert s["TTT_ENABLED"].default is False and s["ttt_enabled"] is s["TTT_ENABLED"]
    assert s["TTT_LR"].default == pytest.approx(0.005)
    assert s["COMPRESSOR"].default == "brotli"
    assert s["eval_stride"].default == 64 and s["eval_stride"].env is None
    assert s["MODE"].default is False
    assert s["SLOT_ENABLED"].default == 1 and s["slot_enabled"].default == 1
    assert s["INLINE_FLAG"].default == "0"
    assert all(v.source == "default" for v in s.values())


def test_readme_run_command_overrides(tmp_path):
    readme = ("# run\n```bash\nexport TTT_LR=0.01\nSEED=42 TTT_ENABLED=1 \\\n  COMPRESSOR=lzma "
              "torchrun --standalone --nproc_per_node=8 train_gpt.py\nSEED=$SEED torchrun train_gpt.py\n```\n")
    s = resolve_settings(AuditContext(make(tmp_path, {"train_gpt.py": SCRIPT, "README.md": readme})))
    assert s["TTT_ENABLED"].effective is True and s["TTT_ENABLED"].source == "README"
    assert s["SEED"].effective == 42
    assert s["TTT_LR"].effective == pytest.approx(0.01)
    assert s["COMPRESSOR"].effective == "lzma"
    assert s["ETLB_ENABLED"].effective is False and s["ETLB_ENABLED"].source == "default"


def test_run_script_then_log_override(tmp_path):
    log = "Hyperparameters:\n  seed: 7\n  ttt_enabled: False\n  ttt_lr: 0.02\nstep:1/2\n"
    files = {"train_gpt.py": SCRIPT, "run.sh": "#!/bin/bash\nTTT_ENABLED=1 SEED=3 torchrun train_gpt.py\n",
             "train_seed7.log": log}
    s = resolve_settings(AuditContext(make(tmp_path, files)))
    assert s["TTT_ENABLED"].effective is False and s["TTT_ENABLED"].source == "log:train_seed7.log"
    assert s["SEED"].effective == 7
    assert s["TTT_LR"].effective == pytest.approx(0.02)


def test_run_script_alone(tmp_path):
    files = {"train_gpt.py": SCRIPT, "run_cuda.sh": "export ETLB_ENABLED=1\ntorchrun train_gpt.py\n"}
    s = resolve_settings(AuditContext(make(tmp_path, files)))
    assert s["ETLB_ENABLED"].effective is True and s["ETLB_ENABLED"].source == "run_cuda.sh"


@pytest.mark.parametrize("test,default,run", [
    ("h.ttt_enabled", False, True),
    ("args.ttt_enabled and args.seed > 0", False, True),
    ("TTT_ENABLED", False, True),
    ("not args.etlb_enabled", True, True),
    ("int(os.environ.get('ETLB_ENABLED', '0'))", False, False),
    ("int(os.environ.get('INLINE_FLAG', '0'))", False, False),
    ("args.etlb_enabled and some_local", False, False),     # a known False decides `and`
    ("args.ttt_enabled or some_local", None, True),         # a known True decides `or`
    ("self.unrelated_thing", None, None),
])
def test_branch_state(tmp_path, test, default, run):
    readme = "```\nTTT_ENABLED=1 torchrun train_gpt.py\n```\n"
    sub = make(tmp_path, {"train_gpt.py": SCRIPT, "README.md": readme})
    assert enabled_by_default(AuditContext(sub), expr(test)) is default
    assert enabled_by_run(AuditContext(sub), expr(test)) is run
    state, why = branch_state(AuditContext(sub), expr(test))
    assert state == {True: "on", False: "off", None: "unknown"}[run]
    assert why


def test_branch_state_explains_default(tmp_path):
    sub = make(tmp_path, {"train_gpt.py": SCRIPT})
    state, why = branch_state(AuditContext(sub), expr("h.etlb_enabled"))
    assert state == "off" and "ETLB_ENABLED=False by default" in why


def test_non_literal_default_is_unknown(tmp_path):
    code = "import os\nclass Hyperparameters:\n    run_id = os.environ.get('RUN_ID', str(uuid.uuid4()))\n"
    s = resolve_settings(AuditContext(make(tmp_path, {"train_gpt.py": code})))
    assert s["RUN_ID"].default is UNKNOWN
    assert enabled_by_default(AuditContext(make(tmp_path / "b", {"train_gpt.py": code})), expr("h.run_id")) is None


def test_unparseable_script_gives_empty_settings(tmp_path):
    assert resolve_settings(AuditContext(make(tmp_path, {"train_gpt.py": "def f(:\n"}))) == {}


@requires_pg_repo
def test_real_record_run_command_and_logs():
    root = pg_repo() / "records" / "track_10min_16mb"
    sub = Submission(root / "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon", "x")
    s = resolve_settings(AuditContext(sub))
    assert s["TTT_ENABLED"].default is False and s["TTT_ENABLED"].effective is True
    sub = Submission(root / "2026-04-29_SmearGateBOSFix_3Seed_1.06141", "y")
    s = resolve_settings(AuditContext(sub))
    assert s["CASEOPS_ENABLED"].default is False and s["CASEOPS_ENABLED"].effective is True
    assert s["PHASED_TTT_NUM_PHASES"].effective == 3 and s["PHASED_TTT_NUM_PHASES"].source.startswith("log:")


def test_env_helper_function(tmp_path):
    code = ("import os\ndef _e(k, d, t=str):\n    v = os.environ.get(k, str(d))\n"
            "    if t == bool: return bool(int(v))\n    return t(v)\n"
            "class Hyperparameters:\n    temp_scaling = _e('TEMP_SCALING', 0, bool)\n"
            "    layers = _e('NUM_LAYERS', 16, int)\n    path = _e('DATA_PATH', './data')\n")
    sub = make(tmp_path, {"train_gpt.py": code, "run_x.sh": "TEMP_SCALING=1 \\\nNUM_LAYERS=10 \\\ntorchrun x.py\n"})
    s = resolve_settings(AuditContext(sub))
    assert s["TEMP_SCALING"].default is False and s["TEMP_SCALING"].effective is True
    assert s["NUM_LAYERS"].default == 16 and s["NUM_LAYERS"].effective == 10
    assert s["DATA_PATH"].default == "./data" and s["path"].source == "default"
