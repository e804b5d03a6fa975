"""Every rule's own LEGAL and ILLEGAL examples, expanded into one test each (Fixit-style)."""

from __future__ import annotations

import pytest

from harness.rule_examples import check_illegal, check_legal
from rules import all_rules

CASES = [(rule, "legal", i, ex) for rule in all_rules() for i, ex in enumerate(rule.LEGAL)] + \
        [(rule, "illegal", i, ex) for rule in all_rules() for i, ex in enumerate(rule.ILLEGAL)]


@pytest.mark.parametrize("rule,kind,index,example", CASES,
                         ids=[f"{r.ID}-{k}-{i}" for r, k, i, _ in CASES])
def test_example(rule, kind, index, example):
    problem = check_legal(rule, example) if kind == "legal" else check_illegal(rule, example)
    assert problem is None, problem


@pytest.mark.parametrize("rule", all_rules(), ids=[r.ID for r in all_rules()])
def test_rule_is_documented(rule):
    assert rule.TITLE and rule.RATIONALE and rule.CITATION.quote
    assert rule.CATEGORY in ("legality", "eligibility", "hygiene")
    assert rule.SEVERITY in ("error", "warning", "info")
    assert rule.COMMANDS and set(rule.COMMANDS) <= {"check", "run", "eval", "trace"}
    if rule.STATIC:   # a rule whose findings come from a run is tested by that command's tests
        assert rule.ILLEGAL, f"{rule.ID} has no illegal example"
        assert rule.LEGAL, f"{rule.ID} has no legal example"
    else:
        assert not rule.ILLEGAL and not rule.LEGAL, f"{rule.ID}: `check` never runs its examples"
