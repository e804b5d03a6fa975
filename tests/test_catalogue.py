"""One catalogue of findings: every finding id golfaudit emits is a registered rule, built by that rule."""

from __future__ import annotations

import ast

import rules
from harness.report import Finding
from tests.conftest import ROOT

# The only places a Finding is constructed: the rule's own `finding()` and the JSON round trip of a report.
BUILDERS = {"rules/base.py", "harness/report.py"}


def _constructions(path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "Finding":
                out.append(node.lineno)
    return out


def test_findings_are_built_only_through_a_rule():
    stray = []
    for folder in ("harness", "rules", "scripts", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in BUILDERS:
                stray += [f"{rel}:{line}" for line in _constructions(path)]
    stray += [f"audit.py:{line}" for line in _constructions(ROOT / "audit.py")]
    assert not stray, f"build these findings with rules.get(ID).finding(...): {stray}"


def test_a_rule_builds_findings_with_its_own_category_and_citation():
    size_cap = rules.get("SIZE-CAP-16MB")
    f = size_cap.finding("over", "train.log", 3)
    assert (f.rule, f.category, f.source_weight) == ("SIZE-CAP-16MB", "legality", "README")
    assert f.citation == str(size_cap.CITATION)


def test_unregistered_names_the_ids_no_rule_defines():
    assert rules.unregistered(["SIZE-CAP-16MB", "TRACE", "REPRODUCIBILITY", "NOT-A-RULE"]) == {"NOT-A-RULE"}


def test_every_runtime_id_is_registered():
    for rule_id in ("REPRODUCIBILITY", "TRACE", "EVAL-ADAPTER", "INLINE-IGNORE", "SUPPRESSION", "INTERNAL-ERROR",
                    "C2-FULL-NORMALIZED-DISTRIBUTION", "SIZE-CAP-16MB", "TRAIN-TIME-600S", "EVAL-TIME-600S",
                    "GPTQ-IN-TRAIN-BUDGET"):
        assert isinstance(rules.get(rule_id).finding("x"), Finding)


def test_the_suite_records_the_ids_it_emits():
    from harness.report import SubmissionReport, judge

    judge("x", "10min-16mb", [rules.get("TRACE").finding("incomplete")], {}, {})
    assert "TRACE" in SubmissionReport.__init__.emitted
