"""Every merged record in PG_REPO/records: the TTT rules raise no deciding error, every record that does TTT
gets a score-first proof, and at most 10% fall to needs-review."""

from __future__ import annotations

import pytest

from harness.context import AuditContext
from harness.discover import find_submissions
from harness.report import decide_verdict
from harness.submission import Submission
from rules import all_rules
from tests.conftest import pg_repo, requires_pg_repo

TTT_IDS = ("TTT-SCORE-FIRST", "PREQUANT-TTT-ON-VAL", "TTT-NO-RESCORE", "TTT-MULTI-EPOCH", "TTT-WARMUP-ON-VAL")


@pytest.fixture(scope="module")
def record_findings() -> dict[str, list]:
    repo = pg_repo()
    rules = [r() for r in all_rules() if r.ID in TTT_IDS]
    out = {}
    for folder in find_submissions(repo / "records"):
        ctx = AuditContext(Submission(folder, str(folder)))
        out[folder.name] = [f for rule in rules for f in rule.check(ctx)]
    return out


@requires_pg_repo
def test_no_deciding_error_on_merged_records(record_findings):
    assert len(record_findings) >= 50
    bad = {name: [(f.rule, f.line, f.message) for f in fs if f.severity == "error" and f.confidence != "low"]
           for name, fs in record_findings.items()}
    assert not {k: v for k, v in bad.items() if v}


@requires_pg_repo
def test_needs_review_at_most_ten_percent(record_findings):
    verdicts = [decide_verdict(fs) for fs in record_findings.values()]
    assert verdicts.count("needs-review") <= 0.10 * len(verdicts)
    assert "illegal" not in verdicts


@requires_pg_repo
def test_every_ttt_record_gets_a_proof(record_findings):
    ttt = [name for name in record_findings if "ttt" in name.lower()]
    assert len(ttt) >= 12
    for name in ttt:
        proofs = [f for f in record_findings[name] if f.rule == "TTT-SCORE-FIRST" and f.severity == "info"]
        assert proofs, f"{name}: no score-first proof"
        assert all("score" in p.message and "line" in p.message for p in proofs)
