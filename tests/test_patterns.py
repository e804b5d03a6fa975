"""Static pattern helpers (harness.scan.patterns) and the pattern rules on real records (PG_REPO)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.scan.config import function_uses, overall_use
from harness.scan.patterns import adaptations, current_token_refs, eval_functions, table_updates, token_keyed
from harness.scan.vocabulary import is_eval_function, is_val_word
from harness.submission import Submission
from rules import rule_by_id
from tests.conftest import pg_repo, requires_pg_repo

D_RULES = ("GPTQ-CALIB-NO-VAL", "SLOT", "ETLB", "NGRAM-CACHE", "C1-STRICT-CAUSAL", "BPB-BYTE-EXACT",
           "EVAL-SELF-CONTAINED", "EVAL-NO-TRAIN-DATA")


def unit_of(src: str) -> CodeUnit:
    return CodeUnit("t.py", src, ast.parse(src))


def make(tmp_path: Path, files: dict[str, str], track: str = "track_10min_16mb") -> Submission:
    root = tmp_path / "records" / track / "2026-04-20_X"
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return Submission(root, root.name)


@pytest.mark.parametrize("name,expected", [
    ("eval_val", True), ("eval_val_sliding_ttt", True), ("train_val_ttt_global_sgd", True),
    ("score_chunk", True), ("train_and_eval", False), ("collect_hessians", False), ("train_model", False),
    ("forward", False),
])
def test_is_eval_function(name, expected):
    assert is_eval_function(name) is expected


@pytest.mark.parametrize("word,expected", [
    ("val_tokens", True), ("val_data", True), ("fineweb_val_*.bin", True), ("val_files", True),
    ("value", False), ("interval", False), ("eval_stride", False), ("max_val", False),
])
def test_is_val_word(word, expected):
    assert is_val_word(word) is expected


def test_adaptation_region_context_vs_scored():
    src = '''
def eval_ctx(logits, y, s, bias):
    b = bias.clone().requires_grad_(True)
    opt = torch.optim.SGD([b], lr=0.1)
    ctx_tgt = y.squeeze(0)[:s]
    F.cross_entropy(logits[:s] + b, ctx_tgt).backward()
    return logits + b

def eval_all(logits, y, bias):
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.Adam([b])
    loss = F.cross_entropy(logits + b, y[s:])
    loss.backward()
    return logits + b
'''
    found = {a.function.name: a for a in adaptations([unit_of(src)])}
    assert found["eval_ctx"].kind == "logit-bias" and found["eval_ctx"].region == "context"
    assert found["eval_all"].region == "scored"


def test_ttt_parameters_are_not_free_tensors():
    src = '''
def eval_val_ttt(model, x, y):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    F.cross_entropy(model(x), y).backward()
'''
    assert adaptations([unit_of(src)]) == []


def test_token_keyed_and_current_token():
    src = "key = (toks[p - 1], toks[p])\ncounts[key] += 1\nx_batch[i, :n] = chunk[:-1]\n"
    tree = ast.parse(src)
    values = {"key": [tree.body[0].value]}
    aug, batch = tree.body[1], tree.body[2]
    assert token_keyed(aug.target.slice, values)
    assert not token_keyed(batch.targets[0].slice, values)
    assert [ast.unparse(n) for n in current_token_refs(tree.body[0].value, "p")] == ["toks[p]"]
    loop = ast.parse("for p in range(9):\n    counts[(toks[p-1], toks[p])] += 1\n    x[i, :3] = 0\n").body[0]
    assert [t for t, _, _ in table_updates(loop)] == ["counts"]


def test_eval_functions_follow_calls():
    src = '''
def helper():
    return open("fineweb_train_000000.bin").read()

def eval_val(model):
    return helper()

def main():
    return helper()
'''
    reach = eval_functions([unit_of(src)])
    assert set(reach) == {"eval_val", "helper"}
    assert "called from eval_val()" in reach["helper"][2]


def test_function_uses_and_gating(tmp_path):
    code = '''import os
class Hyperparameters:
    etlb_enabled = bool(int(os.environ.get("ETLB_ENABLED", "0")))
def eval_etlb():
    return eval_etlb
def main():
    h = Hyperparameters()
    if h.etlb_enabled:
        eval_etlb()
'''
    sub = make(tmp_path, {"train_gpt.py": code})
    uses = function_uses(AuditContext(sub), "eval_etlb")
    assert [(u.line, u.state) for u in uses] == [(9, "off")]        # the self-reference at line 5 is skipped
    assert overall_use(uses)[0] == "off"
    sub = make(tmp_path / "b", {"train_gpt.py": code, "README.md": "```\nETLB_ENABLED=1 torchrun train_gpt.py\n```\n"})
    assert overall_use(function_uses(AuditContext(sub), "eval_etlb"))[0] == "on"
    assert overall_use(function_uses(AuditContext(sub), "nowhere")) == ("unused", "never called")


def test_code_units_skip_unparseable(tmp_path):
    sub = make(tmp_path, {"train_gpt.py": "def f(:\n"})
    units = AuditContext(sub).units
    assert units == [] or all(u.tree is not None for u in units)


def test_bpb_ratio_is_a_warning_on_the_non_record_track(tmp_path):
    src = "import math\n\ndef report(total_bits, total_tokens):\n    bpb = total_bits / (total_tokens * 4.3)\n" \
          "    return bpb\n"
    rule = rule_by_id("BPB-BYTE-EXACT")()
    record = list(rule.check(AuditContext(make(tmp_path / "a", {"train_gpt.py": src}))))
    non_record = list(rule.check(AuditContext(make(tmp_path / "b", {"train_gpt.py": src}, "track_non_record_16mb"))))
    assert [(f.severity, f.line) for f in record] == [("error", 4)]
    assert [(f.severity, f.line) for f in non_record] == [("warning", 4)]


def test_bad_input_never_raises(tmp_path):
    files = {"train_gpt.py": "\x00\x01 not python", "README.md": "```\nX=$(rm -rf /) torchrun\n```\n",
             "run.sh": "export 'unterminated\n", "train.log": "Hyperparameters:\n  etlb_enabled: maybe\n"}
    sub = make(tmp_path, files)
    for rid in D_RULES:
        assert list(rule_by_id(rid)().check(AuditContext(sub))) == []


# -- real records --------------------------------------------------------------------------------------
def _record_dirs() -> list[Path]:
    root = pg_repo() / "records"
    return sorted(p for p in root.glob("*/*") if p.is_dir())


@requires_pg_repo
def test_merged_records_draw_no_error_from_d_rules():
    """Acceptance: no merged record gets an error-severity finding from these rules; the only warnings
    are the shipped-but-off ETLB path of 04-09 A2 and the disclosed approximate BPB of a non-record entry."""
    counts: Counter = Counter()
    for folder in _record_dirs():
        ctx = AuditContext(Submission(folder, folder.name))
        for rid in D_RULES:
            for f in rule_by_id(rid)().check(ctx):
                assert f.severity != "error", f"{folder.name}: {f.rule} {f.file}:{f.line} {f.message}"
                counts[(rid, f.severity, folder.name)] += 1
    assert counts[("ETLB", "warning", "2026-04-09_A2_Muon097_3Seed")] == 1
    assert {k[0] for k in counts} <= {"ETLB", "BPB-BYTE-EXACT"}


@requires_pg_repo
def test_a2_etlb_is_off_because_of_the_log_and_default():
    folder = pg_repo() / "records" / "track_10min_16mb" / "2026-04-09_A2_Muon097_3Seed"
    sub = Submission(folder, folder.name)
    [f] = rule_by_id("ETLB")().check(AuditContext(sub))
    assert f.severity == "warning" and "eval_val_sliding_etlb" in f.message and "ETLB_ENABLED=False" in f.message
    assert f.file == "train_gpt.py (unpacked)"


@requires_pg_repo
def test_3layerrecur_calls_undefined_etlb_without_error():
    folder = pg_repo() / "records" / "track_10min_16mb" / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT"
    sub = Submission(folder, folder.name)
    assert list(rule_by_id("ETLB")().check(AuditContext(sub))) == []
    assert overall_use(function_uses(AuditContext(sub), "eval_val_sliding_etlb"))[0] == "off"


def test_function_uses_follow_the_caller(tmp_path):
    code = '''import os
class Hyperparameters:
    slot_enabled = bool(int(os.environ.get("SLOT_ENABLED", "0")))
def eval_slot():
    return 1
def run_evals(h):
    return eval_slot()
def dead():
    return eval_slot()
def main():
    h = Hyperparameters()
    if h.slot_enabled:
        run_evals(h)
'''
    sub = make(tmp_path, {"train_gpt.py": code})
    uses = function_uses(AuditContext(sub), "eval_slot")
    assert [(u.line, u.state) for u in uses] == [(7, "off")]   # dead() is never called: dropped
    assert "run_evals()" in uses[0].why
    sub = make(tmp_path / "b", {"train_gpt.py": code, "train.log": "Hyperparameters:\n  slot_enabled: True\n"})
    assert overall_use(function_uses(AuditContext(sub), "eval_slot"))[0] == "on"


@requires_pg_repo
def test_a2_kernel_with_the_1420_leak_put_back_is_flagged(tmp_path):
    """04-09 A2's C++ kernel gates hints on tokens_[p-1]; reverting that fix to the target token is caught."""
    import shutil

    src = pg_repo() / "records" / "track_10min_16mb" / "2026-04-09_A2_Muon097_3Seed"
    rule = rule_by_id("C1-STRICT-CAUSAL")()
    assert list(rule.check(AuditContext(Submission(src, src.name)))) == []
    dst = tmp_path / "a2"
    shutil.copytree(src, dst)
    kernel = dst / "ngram" / "fused_expert_kernel.cpp"
    text = kernel.read_text()
    assert "is_bnd_[prev_tok]" in text
    kernel.write_text(text.replace("is_bnd_[prev_tok]", "is_bnd_[tok]", 1))
    [f] = rule.check(AuditContext(Submission(dst, "a2")))
    assert f.severity == "error" and f.file == "ngram/fused_expert_kernel.cpp"
    assert "is_bnd_[tok]" in text.replace("is_bnd_[prev_tok]", "is_bnd_[tok]", 1).splitlines()[f.line - 1]
