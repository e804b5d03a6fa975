"""Parameters taken as validation tokens by their role (harness.scan.roles) when no data flow binds them."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.scan.model import Program
from harness.scan.roles import role_params
from harness.submission import Submission
from rules import all_rules
from rules.ttt_multi_epoch import DOC_HELPER, DOC_HELPER_SCORE_FIRST

TTT_IDS = ("TTT-SCORE-FIRST", "PREQUANT-TTT-ON-VAL", "TTT-NO-RESCORE", "TTT-MULTI-EPOCH", "TTT-WARMUP-ON-VAL")


def roles_of(source: str) -> dict[str, dict[str, str]]:
    program = Program([CodeUnit("train_gpt.py", source, ast.parse(source))])
    return {f.name: why for f, why in role_params(program).values()}


def ttt_findings(source: str, tmp_path: Path) -> list:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Role"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(source)
    ctx = AuditContext(Submission(folder, str(folder)))
    return [f for r in all_rules() if r.ID in TTT_IDS for f in r().check(ctx)]


HELPER_OF_ATTRIBUTE = '''import torch
import torch.nn.functional as F


def adapt(model, doc_tokens, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    total = torch.zeros(())
    for epoch in range(epochs):
        if epoch == epochs - 1:
            with torch.no_grad():
                total += F.cross_entropy(model(doc_tokens[:-1]), doc_tokens[1:], reduction="sum")
        F.cross_entropy(model(doc_tokens[:-1]), doc_tokens[1:]).backward()
        opt.step()
    return total


def run_documents(model, data, bounds):
    out = torch.zeros(())
    for start, end in bounds:
        piece = data.val_tokens[start:end]
        out += adapt(model, piece, 2)
    return out
'''


def test_a_slice_of_val_tokens_passed_through_a_local_gives_the_role():
    roles = roles_of(HELPER_OF_ATTRIBUTE)
    assert set(roles["adapt"]) == {"doc_tokens"}
    assert "run_documents() passes it `data.val_tokens[start:end]`" in roles["adapt"]["doc_tokens"]
    assert "run_documents" not in roles  # `data` itself is not named or used as tokens


def test_a_helper_given_val_slices_is_judged_like_ttt(tmp_path):
    errors = [f for f in ttt_findings(HELPER_OF_ATTRIBUTE, tmp_path) if f.severity == "error"]
    # training in epoch 0 on the whole document, scoring it in epoch 1: a re-pass and a score after training
    assert {f.rule for f in errors} == {"TTT-MULTI-EPOCH", "TTT-SCORE-FIRST"}
    assert all(f.confidence == "low" and "`doc_tokens` of adapt()" in f.message for f in errors)


def test_training_data_passed_at_a_call_removes_the_role():
    source = HELPER_OF_ATTRIBUTE.replace("def adapt(", "def eval_adapt(")
    source = source[:source.index("def run_documents")] + \
        "def main(model):\n    eval_adapt(model, torch.load(\"./data/fineweb_train_000000.bin\"), 2)\n"
    assert "eval_adapt" not in roles_of(source)
    assert roles_of(source.replace("fineweb_train_000000", "docs"))["eval_adapt"] == \
        {"doc_tokens": "as the token input of the evaluation function eval_adapt()"}


def test_per_document_helper_scoring_only_the_last_epoch(tmp_path):
    errors = [f for f in ttt_findings(DOC_HELPER, tmp_path) if f.severity == "error"]
    assert [f.rule for f in errors] == ["TTT-MULTI-EPOCH"]
    assert "token input of the evaluation function eval_val_lora_ttt()" in errors[0].message


def test_per_document_helper_scoring_each_chunk_first(tmp_path):
    fs = ttt_findings(DOC_HELPER_SCORE_FIRST, tmp_path)
    assert not [f for f in fs if f.severity in ("error", "warning")]
    assert any(f.rule == "TTT-SCORE-FIRST" and "legal order proven" in f.message for f in fs)
