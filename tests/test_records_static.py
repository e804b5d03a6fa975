"""`check` over the 60 real records folders of openai/parameter-golf (needs PG_REPO; skipped without)."""

from __future__ import annotations

import pytest

from harness.measure import matches_rounded
from tests.conftest import pg_repo, requires_pg_repo

pytestmark = [requires_pg_repo, pytest.mark.pg_repo]


@pytest.fixture(scope="module")
def report():
    from harness.engine import audit_paths

    return audit_paths([pg_repo() / "records"], jobs=2, use_cache=False)


def by_name(report, fragment: str):
    found = [s for s in report.submissions if fragment in s.path]
    assert len(found) == 1, fragment
    return found[0]


def value(entry):
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def test_every_folder_audited_without_error(report):
    assert len(report.submissions) == 60
    assert [s.path for s in report.submissions if s.verdict == "error"] == []
    internal = [(s.path, f.message) for s in report.submissions for f in s.findings
                if "internal error" in f.message]
    assert internal == []


def test_naive_baseline_stays_legal(report):
    sub = by_name(report, "2026-03-17_NaiveBaseline")
    assert sub.verdict == "legal"
    seed = sub.measured["seeds"]["1337"]
    assert value(seed["val_bpb"]) == pytest.approx(1.2243657) and seed["val_bpb"]["source"] == "log"
    assert value(seed["total_bytes"]) == 15863489
    assert sub.measured["code"]["binding"] == "raw" and sub.measured["code"]["binding_bytes"] == 47642


def test_hessian_sdclip_over_the_cap_as_logged(report):
    sub = by_name(report, "2026-04-06_SP8192_HessianSDClip")
    assert sub.verdict == "illegal"
    size = [f for f in sub.findings if f.rule == "SIZE-CAP-16MB" and f.severity == "error"]
    totals = {f.file: f.message for f in size}
    assert "16,054,963" in totals["train_seed1337.log"]
    assert "16,059,704" in totals["train_seed3141.log"]
    assert "train_gpt_decode.py" in sub.measured["code"]["raw"]["detail"]
    assert value(sub.measured["code"]["raw"]) == 74 + 80055


def test_packed_code_bytes_bind_from_04_10(report):
    packed = [s for s in report.submissions if "track_10min_16mb/2026-04-1" in s.path
              or "track_10min_16mb/2026-04-2" in s.path]
    assert len(packed) == 11
    for sub in packed:
        code = sub.measured["code"]
        assert code["binding"] == "packed", sub.path
        assert code["binding_bytes"] < 40000 < value(code["raw"])
        assert not [f for f in sub.findings if f.rule == "SIZE-CAP-16MB" and f.severity != "info"], sub.path


def test_scores_match_submission_json_or_a_finding_says_so(report):
    checked = 0
    for sub in report.submissions:
        seeds = sub.measured.get("seeds", {})
        scored = [row for row in seeds.values() if "val_bpb" in row]
        claimed = sub.claims.get("val_bpb", sub.claims.get("mean_val_bpb"))
        if not scored or claimed is None:
            continue
        for row in scored:
            assert row["val_bpb"]["source"] == "log"
        values = [value(row["val_bpb"]) for row in scored]
        backing = [value(row["val_bpb"]) for row in scored if row.get("backs_claim")]
        seed_claims = [r["val_bpb"] for r in sub.claims.get("seeds", {}).values() if "val_bpb" in r]
        agrees = matches_rounded(claimed, sum(values) / len(values)) or any(
            matches_rounded(claimed, v) for v in values) or (backing and matches_rounded(
                claimed, sum(backing) / len(backing))) or (seed_claims and matches_rounded(
                claimed, sum(seed_claims) / len(seed_claims)))   # JSON mean of its own rounded per-seed values
        flagged = any(f.rule == "SUBMISSION-JSON" and "val_bpb" in f.message for f in sub.findings)
        assert agrees or flagged, sub.path
        checked += 1
    assert checked >= 50


def test_known_log_pitfalls(report):
    mixed = by_name(report, "2026-03-19_MixedQuant_Int6Int8")
    assert value(mixed.measured["seeds"]["1337"]["val_bpb"]) == pytest.approx(1.16301431)   # 3 appended runs
    sp4096 = by_name(report, "2026-04-04_SP4096")
    assert value(sp4096.measured["seeds"]["42"]["val_bpb"]) == pytest.approx(1.08938974)    # not the failed TTT
    phased = by_name(report, "2026-04-13_VarLenAttn_PhasingTTT2000")                          # timestamp prefixes
    assert value(phased.measured["seeds"]["0"]["val_bpb"]) == pytest.approx(1.07216564)


def test_every_logged_folder_has_bytes_and_binding(report):
    for sub in report.submissions:
        seeds = sub.measured.get("seeds", {})
        if any("total_bytes" in row for row in seeds.values()) and sub.measured.get("code"):
            assert sub.measured["code"]["binding"] in ("raw", "packed"), sub.path
            assert "total_bytes_max" in sub.measured, sub.path
