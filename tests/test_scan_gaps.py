"""Gaps closed in the static TTT scanner: no proof beside a TTT error, val-named parameters judged by name
when nothing binds them, and symbolic slice bounds (training past the scored slice)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.context import AuditContext
from harness.report import decide_verdict
from harness.scan.bounds import beyond, poly, region
from harness.submission import Submission
from rules import all_rules
from rules.ttt_multi_epoch import EPOCH_IN_MAIN, EPOCH_OUTSIDE, LAST_EPOCH_ONLY
from rules.ttt_no_rescore import RESCORE, TEMPERATURE, WHILE_RESCORE
from rules.ttt_score_first import (
    ADAPT_THEN_SCORE,
    BY_NAME_SCORE_FIRST,
    BY_NAME_TRAIN_FIRST,
    CHUNK_LOOP,
    SLICE_AHEAD,
    SLICE_CONTEXT,
    SLICE_NEXT,
)

FIXTURES = Path(__file__).parent / "fixtures" / "trace"
TTT_IDS = ("TTT-SCORE-FIRST", "PREQUANT-TTT-ON-VAL", "TTT-NO-RESCORE", "TTT-MULTI-EPOCH", "TTT-WARMUP-ON-VAL")


def ttt_findings(folder: Path) -> list:
    ctx = AuditContext(Submission(folder, str(folder)))
    return [f for r in all_rules() if r.ID in TTT_IDS for f in r().check(ctx)]


def findings_of(source: str, tmp_path: Path) -> list:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Gap"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(source)
    return ttt_findings(folder)


def proofs(fs: list) -> list:
    return [f for f in fs if f.rule == "TTT-SCORE-FIRST" and f.severity == "info"]


def errors(fs: list) -> list:
    return [f for f in fs if f.severity == "error"]


# 1. no contradiction ------------------------------------------------------------------------------
def test_epoch_loop_outside_chunk_loop_gets_no_proof():
    fs = ttt_findings(FIXTURES / "illegal_last_epoch_scoring")
    assert [(f.rule, f.line) for f in errors(fs)] == [("TTT-MULTI-EPOCH", 108)]
    assert not proofs(fs), [f.message for f in proofs(fs)]


def test_rescore_gets_no_proof():
    fs = ttt_findings(FIXTURES / "illegal_rescore")
    assert {f.rule for f in errors(fs)} == {"TTT-NO-RESCORE"}
    assert not proofs(fs)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_no_fixture_reads_both_proven_and_illegal(name):
    fs = ttt_findings(FIXTURES / name)
    deciding = [f for f in fs if f.severity == "error" and f.confidence != "low"]
    assert not (deciding and proofs(fs)), [(f.rule, f.severity, f.line) for f in fs]
    if name.startswith("legal_chunked"):
        assert proofs(fs) and not deciding


@pytest.mark.parametrize("source", [EPOCH_OUTSIDE, LAST_EPOCH_ONLY, EPOCH_IN_MAIN, RESCORE, TEMPERATURE,
                                    WHILE_RESCORE])
def test_illegal_multi_epoch_and_rescore_examples_get_no_proof(source, tmp_path):
    fs = findings_of(source, tmp_path)
    assert errors(fs) and not proofs(fs)


# 2. val by parameter name -------------------------------------------------------------------------
def test_val_named_parameter_without_flow_is_needs_review(tmp_path):
    fs = findings_of(BY_NAME_TRAIN_FIRST, tmp_path)
    (err,) = errors(fs)
    assert err.rule == "TTT-SCORE-FIRST" and err.confidence == "low"
    assert "`val_tokens`" in err.message and "by its name" in err.message
    assert decide_verdict(fs) == "needs-review"


def test_val_named_parameter_score_first_is_an_info_proof(tmp_path):
    fs = findings_of(BY_NAME_SCORE_FIRST, tmp_path)
    assert not errors(fs) and [f.severity for f in fs] == ["info"]
    assert "by its name" in fs[0].message and "legal order proven" in fs[0].message


def test_flow_proven_case_never_becomes_name_based(tmp_path):
    head, tail = ADAPT_THEN_SCORE.split("def ttt_adapt(model, tokens, epochs)")
    body, rest = tail.split("\n\n\n", 1)
    source = head + "def ttt_adapt(model, val_tokens, epochs)" + body.replace("tokens", "val_tokens") + "\n\n\n" + rest
    assert source.count("x = val_tokens[") == 1
    fs = findings_of(source, tmp_path)
    assert [(f.severity, f.confidence) for f in errors(fs)] == [("error", "high")]
    assert not any("by its name" in f.message for f in fs)
    assert decide_verdict(fs) == "illegal"


def test_other_parameter_names_are_not_taken_as_val(tmp_path):
    source = BY_NAME_TRAIN_FIRST.replace("val_tokens", "batch_tokens").replace("ttt_eval", "fit_batches")
    assert not findings_of(source, tmp_path)


def test_the_token_input_of_an_evaluation_function_is_val_by_role(tmp_path):
    fs = findings_of(BY_NAME_TRAIN_FIRST.replace("val_tokens", "batch_tokens"), tmp_path)
    (err,) = errors(fs)
    assert err.rule == "TTT-SCORE-FIRST" and err.confidence == "low"
    assert "`batch_tokens`" in err.message and "token input of the evaluation function ttt_eval()" in err.message


# 3. slice bounds ----------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [SLICE_AHEAD, SLICE_NEXT])
def test_training_past_the_scored_slice_is_an_error(source, tmp_path):
    fs = findings_of(source, tmp_path)
    (err,) = errors(fs)
    assert err.rule == "TTT-SCORE-FIRST" and err.confidence == "medium" and "reaches past" in err.message
    assert not proofs(fs)


@pytest.mark.parametrize("source", [SLICE_CONTEXT, CHUNK_LOOP])
def test_training_on_scored_context_keeps_the_proof(source, tmp_path):
    fs = findings_of(source, tmp_path)
    assert not errors(fs) and proofs(fs)


def test_uncomparable_bounds_keep_todays_judgement(tmp_path):
    source = SLICE_AHEAD.replace("y = tokens[a:b + chunk + 1]", "y = tokens[a:min(b + chunk, n) + 1]")
    fs = findings_of(source, tmp_path)
    assert not errors(fs) and proofs(fs)


def _p(text: str, values: dict[str, str] | None = None):
    vals = {k: ast.parse(v, mode="eval").body for k, v in (values or {}).items()}
    return poly(ast.parse(text, mode="eval").body, vals)


def test_poly_expands_products_and_substitutes_single_assignments():
    assert _p("(ci + 1) * chunk") == _p("ci * chunk + chunk") == {("chunk", "ci"): 1, ("chunk",): 1}
    assert _p("b + 1", {"b": "a + chunk", "a": "ci * chunk"}) == {("chunk", "ci"): 1, ("chunk",): 1, (): 1}
    assert _p("b - b") == {}
    assert _p("min(a, b)") is None and _p("a // 2") is None


def _region(code: str, expr: str):
    """region() of `expr` inside a one-function module whose parameter `tokens` is val."""
    from harness.scan.bounds import Frame
    from harness.scan.model import VAL, Closure, Program

    class Unit:
        name = "t.py"
        tree = ast.parse(code)

    prog = Program([Unit()])
    func = prog.by_name["f"][0]
    closure = Closure(prog, func, {"tokens": {VAL}})
    return region(ast.parse(expr, mode="eval").body, [Frame(func, closure, {}, ("k",))])


def test_region_follows_assignments_and_beyond_compares_ends():
    code = "def f(tokens, ci, chunk, ctx):\n    a = ci * chunk\n    b = a + chunk\n    x = tokens[a:b + 1]\n" \
           "    y = tokens[b:b + chunk]\n    z = tokens[a - ctx:b]\n    w = tokens[idx]\n    return x\n"
    x, y, z = _region(code, "x[:-1]"), _region(code, "loss(y)"), _region(code, "z")
    assert [s.text for s in x] == ["tokens[a:b + 1]"]
    assert beyond(y, x) is not None
    assert beyond(z, x) is None and beyond(x, x) is None
    assert _region(code, "w") is None  # an index, not a slice: unknown


def test_region_across_frames_is_not_compared():
    a = _region("def f(tokens, n):\n    x = tokens[0:n]\n    return x\n", "x")
    b = _region("def f(tokens, n):\n    x = tokens[0:n + n]\n    return x\n", "x")
    assert beyond(b, a) is not None
    from dataclasses import replace
    assert beyond(tuple(replace(s, key=("other",)) for s in b), a) is None


# 4. acceptance: examples of their own --------------------------------------------------------------
@pytest.mark.parametrize("rule_id", TTT_IDS + ("SLOT", "ETLB", "GPTQ-CALIB-NO-VAL"))
def test_each_ttt_rule_has_three_legal_and_three_illegal_examples(rule_id):
    (rule,) = [r for r in all_rules() if r.ID == rule_id]
    assert len(rule.LEGAL) >= 3 and len(rule.ILLEGAL) >= 3


# a score read off the training forward pass ------------------------------------------------------------
def test_detached_reported_accumulator_is_a_score_per_document_lora():
    fs = ttt_findings(FIXTURES / "legal_lora_per_doc")
    assert not errors(fs) and decide_verdict(fs) == "legal"
    (proof,) = proofs(fs)
    assert proof.line == 138 and "line 135" in proof.message


@pytest.mark.parametrize("reported", [False, True])
def test_detached_training_loss_does_not_hide_train_first(reported, tmp_path):
    source = ADAPT_THEN_SCORE.replace("    opt = torch.optim.SGD(model.parameters(), lr=0.002)\n",
                                      "    opt = torch.optim.SGD(model.parameters(), lr=0.002)\n    track = 0.0\n", 1)
    source = source.replace("            opt.zero_grad()\n            loss.backward()",
                            "            track += loss.detach()\n            opt.zero_grad()\n            loss.backward()")
    if reported:
        source = source.replace("            opt.step()\n\n", "            opt.step()\n    print(track)\n\n", 1)
    assert "track += loss.detach()" in source and ("print(track)" in source) == reported
    fs = findings_of(source, tmp_path)
    assert decide_verdict(fs) == "illegal", [(f.rule, f.severity, f.line) for f in fs]


def test_per_epoch_training_loss_meter_is_not_a_score(tmp_path):
    """A meter reset inside the epoch loop and logged per epoch (the seed PRs' shape) keeps the deciding
    TTT-SCORE-FIRST error on the backward line."""
    source = ADAPT_THEN_SCORE.replace("    for _ in range(epochs):\n", "    for _ in range(epochs):\n"
                                      "        meter = torch.zeros(())\n", 1)
    source = source.replace("            opt.step()\n\n", "            opt.step()\n            meter += loss.detach()\n"
                            "        print(\"epoch loss\", meter)\n\n", 1)
    assert "meter += loss.detach()" in source and "print(\"epoch loss\", meter)" in source
    fs = findings_of(source, tmp_path)
    deciding = [(f.rule, f.confidence) for f in errors(fs)]
    assert deciding == [("TTT-SCORE-FIRST", "high")], [(f.rule, f.line, f.message) for f in fs]
    assert "loss.backward()" in source.splitlines()[errors(fs)[0].line - 1]


def test_a_function_called_in_the_folder_is_judged_by_flow_only(tmp_path):
    source = BY_NAME_TRAIN_FIRST + '''

def main():
    ttt_eval(torch.nn.Linear(8, 8), torch.load("./data/fineweb_train_000000.bin"))


if __name__ == "__main__":
    main()
'''
    assert not findings_of(source, tmp_path)
