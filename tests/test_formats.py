"""Reviewer formats from fixed reports: golden files for markdown/sarif/junit, and the markdown checklist.

The rule catalogue is fixed here (rulestatus.catalogue is pointed at FIXED_RULES) so that rules added
later to rules/ do not change the golden files; `UPDATE_GOLDEN=1 pytest tests/test_formats*.py` rewrites
them after an intended change (read the diff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.formats import formats, render, rulestatus
from harness.formats.markdown_full import GITHUB_COMMENT_LIMIT
from harness.formats.rulestatus import RuleMeta, row_for
from harness.report import Finding, Report, SubmissionReport, judge

GOLDEN = Path(__file__).parent / "golden"
REPO = "https://github.com/openai/parameter-golf"
SHA = "0123456789abcdef0123456789abcdef01234567"

FIXED_RULES = [
    RuleMeta("EVAL-TIME-600S", "Evaluation fits in 600 s", "legality", "error",
             "Evaluation must take under ten minutes on 8xH100.", 'README: "evaluation ... under 10 minutes"',
             "README", "https://github.com/openai/parameter-golf#faq"),
    RuleMeta("RECORDS-FOLDER", "Records folder is complete and its script parses", "hygiene", "error",
             "A record PR adds one folder.", 'README, Submission process: "Broken scripts will not be accepted."',
             "README"),
    RuleMeta("SIG-0.005-NATS", "Beats the record by 0.005 nats at p < 0.01", "eligibility", "error",
             "New records must beat SOTA significantly.", 'README: "at least 0.005 nats"', "README"),
    RuleMeta("TTT-SCORE-FIRST", "Test-time training only on already-scored tokens", "legality", "error",
             "Training on validation tokens before they are scored leaks the answer.",
             "README FAQ: \"you are only allowed to test-time train on validation set tokens you've already "
             "evaluated your model on\"", "README", "https://github.com/openai/parameter-golf#faq"),
]


def _f(rule: str, category: str, severity: str, confidence: str, file: str | None, line: int | None,
       message: str, evidence: str = "", weight: str = "README", end_line: int | None = None) -> Finding:
    cite = next(m.citation for m in FIXED_RULES if m.id == rule)
    return Finding(rule=rule, category=category, severity=severity, confidence=confidence, file=file, line=line,
                   end_line=end_line if end_line is not None else line, message=message, citation=cite,
                   source_weight=weight, evidence=evidence)


def _coverage(**status: str) -> dict[str, dict[str, str]]:
    """What each fixed rule read (as the engine records it): checked, or not checked / n/a with the reason."""
    details = {"checked": "analysed train_gpt.py", "not-checked": "no --sota given", "n/a": "not this track"}
    return {rule.replace("_", "-").replace("SIG-0-005", "SIG-0.005"): {"status": s, "detail": details[s]}
            for rule, s in status.items()}


LONG_EVIDENCE = "\n".join(f"    loss = model(x_val[{i}]).loss  # step {i}" for i in range(40))


def sample_report() -> Report:
    """Three submissions: illegal (with a suppressed finding and an info proof), needs-review, unreadable."""
    illegal = judge(
        "records/track_10min_16mb/2026-04-01_BadTTT", "10min-16mb",
        [
            _f("TTT-SCORE-FIRST", "legality", "error", "high", "train_gpt.py", 812,
               "val tokens reach optimizer.step() at line 812 before they are scored at line 830",
               evidence=LONG_EVIDENCE, end_line=815),
            _f("RECORDS-FOLDER", "hygiene", "warning", "high", None, None, "missing: README.md").suppress(
                "README lives in the PR description (allow.toml entry 1)"),
            _f("EVAL-TIME-600S", "legality", "info", "high", "train_seed1337.log", 2051,
               "eval took 412.3 s of 600 s", evidence="final_int8_zlib_roundtrip_exact val_bpb:1.0912"),
        ],
        {"val_bpb": 1.0912, "bytes_total": 15_912_345, "seeds": {"1337": {"val_bpb": 1.0912}}},
        {"seeds": {"1337": {"val_bpb": {"value": 1.0912, "source": "log",
                                        "detail": "train_seed1337.log:2051 final_int8_zlib_roundtrip_exact"},
                            "total_bytes": {"value": 15_912_345, "source": "log", "detail": "train_seed1337.log:2040"},
                            "train_time_s": {"value": 599.8, "source": "log", "detail": "train_seed1337.log:2001"},
                            "eval_time_s": {"value": 412.3, "source": "log", "detail": "train_seed1337.log:2051"}}},
         "val_bpb_mean": {"value": 1.0912, "source": "log", "detail": "mean of 1 logs' final scores"},
         "total_bytes_max": {"value": 15_912_345, "source": "log", "detail": "max over 1 logs"},
         "val_bpb_reproduced": {"value": 1.0931, "source": "reproduced",
                                "detail": "decoy-free val shards fineweb_val_000000.bin (62,021,846 tokens), "
                                          "sliding window 2048/64"}},
        coverage=_coverage(EVAL_TIME_600S="checked", RECORDS_FOLDER="checked", SIG_0_005_NATS="not-checked",
                           TTT_SCORE_FIRST="checked"),
    )
    review = judge(
        "records/track_non_record_16mb/2026-04-02_Odd|Name", "non-record-16mb",
        [
            _f("TTT-SCORE-FIRST", "legality", "error", "low", "train_gpt.py", 40,
               "exec() of a decoded string reaches the eval loop; cannot decide statically; run `audit.py trace`",
               evidence="exec(L.decompress(B.b85decode(blob)))"),
            _f("EVAL-TIME-600S", "legality", "info", "high", None, None,
               "not applicable: the non-record track has no time limit"),
        ],
        {"val_bpb": 1.2}, {},
        coverage=_coverage(EVAL_TIME_600S="checked", RECORDS_FOLDER="checked", SIG_0_005_NATS="checked",
                           TTT_SCORE_FIRST="checked"),
    )
    broken = judge("records/track_10min_16mb/2026-04-03_Broken", "unknown", [], {}, {},
                   error="records/track_10min_16mb/2026-04-03_Broken: cannot be read: Permission denied")
    return Report(tool="golfaudit", version="0.1.0", ruleset="parameter-golf@test",
                  submissions=(illegal, review, broken))


@pytest.fixture
def fixed_rules(monkeypatch):
    monkeypatch.setattr(rulestatus, "catalogue", lambda: list(FIXED_RULES))


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"golden file {path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_new_formats_are_registered():
    assert {"markdown", "sarif", "junit", "text", "json"} <= set(formats())


@pytest.mark.parametrize("name,suffix", [("markdown", ""), ("markdown-full", "-full")])
def test_markdown_golden(fixed_rules, name, suffix):
    check_golden(f"report{suffix}.md", render(sample_report(), name, repo_url=REPO, ref=SHA))


@pytest.mark.parametrize("name,suffix", [("markdown", ""), ("markdown-full", "-full")])
def test_markdown_single_submission_golden(fixed_rules, name, suffix):
    report = sample_report()
    one = Report(report.tool, report.version, report.ruleset, report.submissions[:1])
    check_golden(f"single{suffix}.md", render(one, name, repo_url=REPO, ref=SHA))


# -- the maintainer's checklist, asserted on the rendered text ---------------------------------------------
def test_markdown_first_line_is_verdict_with_eligibility(fixed_rules):
    report = sample_report()
    one = Report(report.tool, report.version, report.ruleset, report.submissions[:1])
    first = render(one, "markdown").splitlines()[0]
    assert "golfaudit: illegal" in first and "eligible: **no**" in first
    first_many = render(report, "markdown").splitlines()[0]
    assert "3 submissions" in first_many and "1 illegal" in first_many and "1 needs-review" in first_many
    assert "eligible:" in first_many


def test_markdown_links_are_pinned_to_the_ref(fixed_rules):
    text = render(sample_report(), "markdown", repo_url=REPO + "/", ref=SHA)
    link = (f"({REPO}/blob/{SHA}/records/track_10min_16mb/2026-04-01_BadTTT/train_gpt.py#L812-L815)")
    assert f"[`records/track_10min_16mb/2026-04-01_BadTTT/train_gpt.py:812-815`]{link}" in text
    # the "|" in a folder name is escaped in the label and percent-encoded in the URL
    assert "2026-04-02_Odd%7CName/train_gpt.py#L40)" in text
    unlinked = render(sample_report(), "markdown")
    assert "/blob/" not in unlinked and "`records/track_10min_16mb/2026-04-01_BadTTT/train_gpt.py:812-815`" in unlinked


def test_markdown_rule_table_statuses(fixed_rules):
    text = render(sample_report(), "markdown-full")
    sections = text.split("### ")
    bad = next(s for s in sections if s.startswith("❌"))
    odd = next(s for s in sections if "Odd" in s.split("\n")[0])
    broken = next(s for s in sections if "Broken" in s.split("\n")[0])
    assert re.search(r"`TTT-SCORE-FIRST` \|.*\| ❌ fail", bad)
    assert re.search(r"`EVAL-TIME-600S` \|.*\| ✅ pass \| checked: analysed train_gpt.py", bad)
    assert re.search(r"`RECORDS-FOLDER` \|.*\| ✅ pass \| checked: .*; 1 suppressed", bad)
    assert re.search(r"`SIG-0.005-NATS` \|.*\| ⬜ not checked \| no --sota given", bad)
    assert "✅ pass | \n" not in bad and "✅ pass |  |" not in bad
    assert re.search(r"`TTT-SCORE-FIRST` \|.*\| 🟡 needs-review", odd)
    assert re.search(r"`EVAL-TIME-600S` \|.*\| ➖ n/a \| not applicable: the non-record track", odd)
    assert re.search(r"`SIG-0.005-NATS` \|.*\| ➖ n/a \| eligibility does not apply", odd)
    assert "could not be audited" in broken and "⬜ not checked | the submission could not be read" in broken


def test_markdown_evidence_citation_and_sources(fixed_rules):
    text = render(sample_report(), "markdown-full")
    assert "<details><summary>evidence (40 lines)</summary>" in text      # long evidence is folded
    assert "  ```\n  exec(L.decompress(B.b85decode(blob)))\n  ```" in text  # short evidence is inline
    assert "README · README FAQ: \"you are only allowed to test-time train" in text
    assert "| val_bpb | 1.0912 | 1.0912 | log (mean of 1 logs' final scores) |" in text
    assert "| total bytes (code + model) | 15,912,345 | 15,912,345 | log (max over 1 logs) |" in text
    assert "| train time (s) | — | 599.8 | log (max over seeds; train_seed1337.log:2001) |" in text
    assert "reproduced on decoy-free val shards fineweb_val_000000.bin" in text
    assert "🔕 ~~" in text and "**suppressed**: README lives in the PR description" in text


def _huge_report(n_subs: int, n_findings: int) -> Report:
    subs = []
    for i in range(n_subs):
        findings = [_f("TTT-SCORE-FIRST", "legality", "error" if j % 3 == 0 else "info", "high", "train_gpt.py",
                       j + 1, f"finding {j} " + "x" * 120, evidence=LONG_EVIDENCE) for j in range(n_findings)]
        subs.append(judge(f"records/track_10min_16mb/2026-04-{i:04d}_Big", "10min-16mb", findings, {}, {}))
    return Report("golfaudit", "0.1.0", "t", tuple(subs))


@pytest.mark.parametrize("n_subs,n_findings", [(1, 400), (8, 60), (300, 3)])
def test_markdown_full_truncates_under_the_comment_limit(fixed_rules, n_subs, n_findings):
    report = _huge_report(n_subs, n_findings)
    text = render(report, "markdown-full", repo_url=REPO, ref=SHA)
    assert len(text) <= 65000 < GITHUB_COMMENT_LIMIT
    assert "✂️ **Truncated**" in text
    assert text.splitlines()[0].startswith("❌ **golfaudit:")      # the verdict line always survives


@pytest.mark.parametrize("n_subs,n_findings", [(1, 400), (8, 60), (300, 3), (60, 40)])
def test_markdown_stays_under_the_comment_limit(fixed_rules, n_subs, n_findings):
    text = render(_huge_report(n_subs, n_findings), "markdown", repo_url=REPO, ref=SHA)
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert text.splitlines()[0].startswith("❌ **golfaudit:")
    if n_subs == 1:
        assert len(text.encode("utf-8")) < 8192
        assert "more error(s) in the full report" in text


def test_markdown_truncation_says_what_was_cut(fixed_rules):
    text = render(_huge_report(1, 400), "markdown-full")
    note = text[text.index("✂️ **Truncated**"):]
    assert "evidence" in note and "info findings" in note
    small = render(_huge_report(1, 2), "markdown-full")
    assert "Truncated" not in small and "<details><summary>evidence (40 lines)" in small


def test_markdown_of_an_empty_report():
    text = render(Report("golfaudit", "0.1.0", "t", ()), "markdown")
    assert "No submission was audited." in text


def test_row_status_follows_the_verdict_policy(fixed_rules):
    report = sample_report()
    metas = {m.id: m for m in FIXED_RULES}
    bad, odd, broken = report.submissions
    assert row_for(bad, metas["TTT-SCORE-FIRST"]).status == "fail"
    assert row_for(odd, metas["TTT-SCORE-FIRST"]).status == "needs-review"
    assert row_for(broken, metas["TTT-SCORE-FIRST"]).status == "not-checked"
    # the same low-confidence error, suppressed by the reviewer: the row passes and lists it
    quiet = SubmissionReport(**{**odd.__dict__, "findings": tuple(f.suppress("ok") for f in odd.findings)})
    row = row_for(quiet, metas["TTT-SCORE-FIRST"])
    assert row.status == "pass" and len(row.suppressed) == 1


def test_markdown_truncation_cuts_legal_sections_first(fixed_rules):
    legal = [judge(f"records/track_10min_16mb/2026-04-{i:04d}_Fine", "10min-16mb",
                   [_f("EVAL-TIME-600S", "legality", "info", "high", "train.log", j + 1, f"proof {j} " + "y" * 200,
                       evidence=LONG_EVIDENCE) for j in range(40)], {}, {}) for i in range(12)]
    bad = sample_report().submissions[0]
    text = render(Report("golfaudit", "0.1.0", "t", (*legal, bad)), "markdown-full")
    assert len(text) <= 65000 and "✂️ **Truncated**" in text
    bad_section = text[text.index("### ❌"):]
    assert "<details><summary>evidence (40 lines)</summary>" in bad_section   # the illegal one kept everything
    assert "val tokens reach optimizer.step()" in bad_section


@pytest.mark.parametrize("name", ["markdown-full", "sarif", "junit"])
def test_undecodable_file_names_still_render_as_utf8(fixed_rules, name):
    f = _f("RECORDS-FOLDER", "hygiene", "warning", "high", "bad\udcff.py", 1, "odd name \udcfe")
    report = Report("golfaudit", "0.1.0", "t", (judge("records/x/y", "10min-16mb", [f], {}, {}),))
    render(report, name).encode("utf-8")      # would raise UnicodeEncodeError on a lone surrogate
