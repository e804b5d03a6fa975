"""Reviewer-side suppressions: --allow, --baseline, and in-source comments that only annotate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import Finding, Report, judge
from harness.rule_examples import materialise
from harness.suppress import (
    SuppressionError,
    annotate_inline,
    apply_suppressions,
    load_allow,
    load_baseline,
)

ROOT = Path(__file__).resolve().parent.parent
PATH = "records/track_10min_16mb/2026-04-01_X"


def _f(rule: str, category: str, severity: str, line: int | None, message: str, confidence: str = "high",
       file: str | None = "train_gpt.py") -> Finding:
    return Finding(rule=rule, category=category, severity=severity, confidence=confidence, file=file, line=line,
                   end_line=line, message=message, citation="README", source_weight="README")


def _report(*findings: Finding, path: str = PATH, track: str = "10min-16mb") -> Report:
    return Report("golfaudit", "0.1.0", "t", (judge(path, track, list(findings), {}, {}),))


TTT = _f("TTT-SCORE-FIRST", "legality", "error", 12, "trains on val before scoring")
SIZE = _f("SIZE-CAP-16MB", "legality", "error", None, "16,054,963 bytes", file=None)


# -- loading ------------------------------------------------------------------------------------------------
def test_allow_file_json_and_toml(tmp_path):
    j = tmp_path / "allow.json"
    j.write_text(json.dumps([{"path": PATH, "rule": "TTT-SCORE-FIRST", "file": "train_gpt.py", "line": 12,
                              "reason": "maintainer ruling in #1234"}]), encoding="utf-8")
    t = tmp_path / "allow.toml"
    t.write_text(f'[[allow]]\npath = "{PATH}"\nrule = "TTT-*"\nreason = "ok"\n\n'
                 f'[[allow]]\npath = "records/*"\nrule = "SIZE-CAP-16MB"\n', encoding="utf-8")
    (entry,) = load_allow(j)
    assert (entry.path, entry.rule, entry.file, entry.line, entry.reason) == \
        (PATH, "TTT-SCORE-FIRST", "train_gpt.py", 12, "maintainer ruling in #1234")
    first, second = load_allow(t)
    assert first.rule == "TTT-*" and first.reason == "ok" and second.reason == ""
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"allow": [{"path": PATH, "rule": "X", "reason": "r"}]}), encoding="utf-8")
    assert load_allow(wrapped)[0].rule == "X"


@pytest.mark.parametrize("text,problem", [
    ("[{\"path\": 1}", "not valid JSON or TOML"),
    ('[{"rule": "X", "reason": "r"}]', "needs a non-empty string `path`"),
    ('[{"path": "p", "rule": "X", "line": "12", "reason": "r"}]', "`line` must be a positive integer"),
    ('[{"path": "p", "rule": "X", "reasn": "typo"}]', "unknown key(s) reasn"),
    ('{"nothing": []}', "expected a list of entries"),
])
def test_bad_allow_files_name_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "allow.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuppressionError) as err:
        load_allow(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_bad_baseline(tmp_path):
    path = tmp_path / "base.json"
    path.write_text('{"submissions": [{"path": "x"}]}', encoding="utf-8")
    with pytest.raises(SuppressionError, match="not in the golfaudit report shape"):
        load_baseline(path)
    path.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(SuppressionError, match="invalid JSON at line 1"):
        load_baseline(path)


# -- applying -----------------------------------------------------------------------------------------------
def _allow(tmp_path: Path, entries: list[dict]) -> list:
    path = tmp_path / "allow.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return load_allow(path)


def test_allowed_finding_stays_listed_and_the_verdict_is_recomputed(tmp_path):
    report = _report(TTT)
    assert report.submissions[0].verdict == "illegal" and report.submissions[0].eligible is False
    allow = _allow(tmp_path, [{"path": PATH + "/", "rule": "TTT-SCORE-FIRST", "line": 12,
                               "reason": "ruled legal in #1017"}])
    sub = apply_suppressions(report, allow).submissions[0]
    assert sub.verdict == "legal" and sub.eligible is True
    (f,) = sub.findings
    assert f.suppressed and f.suppression_reason == "ruled legal in #1017 (allow.json entry 1)"


def test_allow_entry_must_match_file_and_line(tmp_path):
    allow = _allow(tmp_path, [{"path": PATH, "rule": "TTT-SCORE-FIRST", "line": 13, "reason": "r"}])
    sub = apply_suppressions(_report(TTT), allow).submissions[0]
    assert sub.verdict == "illegal"
    assert not next(f for f in sub.findings if f.rule == "TTT-SCORE-FIRST").suppressed
    stale = next(f for f in sub.findings if f.rule == "SUPPRESSION")
    assert stale.severity == "info" and "matched no finding" in stale.message


def test_entry_without_reason_suppresses_nothing_and_is_a_finding(tmp_path):
    allow = _allow(tmp_path, [{"path": PATH, "rule": "TTT-SCORE-FIRST"},
                              {"path": "records/other", "rule": "SIZE-CAP-16MB", "reason": " "}])
    sub = apply_suppressions(_report(TTT), allow).submissions[0]
    assert sub.verdict == "illegal"
    problems = [f for f in sub.findings if f.rule == "SUPPRESSION"]
    assert len(problems) == 1 and problems[0].severity == "error" and "has no reason" in problems[0].message
    assert "allow.json entry 1" in problems[0].message


def test_suppressing_one_of_two_legality_errors_keeps_illegal(tmp_path):
    allow = _allow(tmp_path, [{"path": PATH, "rule": "TTT-SCORE-FIRST", "reason": "r"}])
    sub = apply_suppressions(_report(TTT, SIZE), allow).submissions[0]
    assert sub.verdict == "illegal"


def test_low_confidence_error_suppressed_leaves_legal(tmp_path):
    review = _f("TTT-SCORE-FIRST", "legality", "error", 40, "exec of a string", confidence="low")
    report = _report(review)
    assert report.submissions[0].verdict == "needs-review"
    allow = _allow(tmp_path, [{"path": PATH, "rule": "TTT-SCORE-FIRST", "reason": "traced by hand: legal"}])
    assert apply_suppressions(report, allow).submissions[0].verdict == "legal"


def test_baseline_matches_path_rule_file_line_message(tmp_path):
    old = _report(TTT)
    base = tmp_path / "report.json"
    base.write_text(json.dumps(old.to_json()), encoding="utf-8")
    keys = load_baseline(base)
    moved = _f("TTT-SCORE-FIRST", "legality", "error", 13, "trains on val before scoring")
    sub = apply_suppressions(_report(TTT, moved), baseline=keys, baseline_name="report.json").submissions[0]
    assert sub.verdict == "illegal"        # the finding that moved to another line is new
    by_line = {f.line: f for f in sub.findings}
    assert by_line[12].suppressed and by_line[12].suppression_reason == "accepted in report.json"
    assert not by_line[13].suppressed
    assert apply_suppressions(_report(TTT), baseline=keys).submissions[0].verdict == "legal"


def test_eligibility_is_recomputed_after_suppression(tmp_path):
    sig = _f("SIG-0.005-NATS", "eligibility", "error", None, "p = 0.2", file=None)
    report = _report(sig)
    assert report.submissions[0].verdict == "legal" and report.submissions[0].eligible is False
    allow = _allow(tmp_path, [{"path": PATH, "rule": "SIG-0.005-NATS", "reason": "systems record, waived"}])
    assert apply_suppressions(report, allow).submissions[0].eligible is True


# -- in-source comments only annotate -------------------------------------------------------------------------
def test_inline_ignore_annotates_but_never_changes_the_verdict(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    lines = ["import torch"] * 11 + ["opt.step()  # golfaudit: ignore[TTT-SCORE-FIRST] trust me"] + ["x"] * 5
    (folder / "train_gpt.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = annotate_inline(_report(TTT, path=str(folder)))
    sub = report.submissions[0]
    assert sub.verdict == "illegal" and sub.eligible is False
    ttt = next(f for f in sub.findings if f.rule == "TTT-SCORE-FIRST")
    assert not ttt.suppressed
    note = next(f for f in sub.findings if f.rule == "INLINE-IGNORE")
    assert note.severity == "info" and note.line == 12 and "stands" in note.message
    # a comment naming another rule does not annotate this finding
    (folder / "train_gpt.py").write_text("\n".join(lines).replace("TTT-SCORE-FIRST", "SIZE-CAP-16MB") + "\n",
                                         encoding="utf-8")
    assert not [f for f in annotate_inline(_report(TTT, path=str(folder))).submissions[0].findings
                if f.rule == "INLINE-IGNORE"]


# -- through the CLI ----------------------------------------------------------------------------------------
def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "audit.py"), "check", *args, "--no-cache", "-j", "1"],
                          cwd=cwd, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _broken_folder(tmp_path: Path) -> str:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-09_Broken"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text("x = 1\ndef f(:  # golfaudit: ignore\n    pass\n", encoding="utf-8")
    return "records/track_10min_16mb/2026-04-09_Broken"


def test_cli_allow_baseline_and_bad_files(tmp_path):
    path = _broken_folder(tmp_path)
    first = _cli(tmp_path, path, "--format", "json")
    data = json.loads(first.stdout)["submissions"][0]
    parse = [f for f in data["findings"] if f["rule"] == "RECORDS-FOLDER" and "does not parse" in f["message"]]
    assert parse and not parse[0]["suppressed"]
    assert any(f["rule"] == "INLINE-IGNORE" and f["line"] == 2 for f in data["findings"])
    (tmp_path / "base.json").write_text(first.stdout, encoding="utf-8")
    again = json.loads(_cli(tmp_path, path, "--format", "json", "--baseline", "base.json").stdout)
    assert all(f["suppressed"] for f in again["submissions"][0]["findings"])
    (tmp_path / "allow.toml").write_text(f'[[allow]]\npath = "{path}"\nrule = "RECORDS-FOLDER"\nline = 2\n'
                                         f'reason = "parse error accepted for the demo"\n', encoding="utf-8")
    allowed = json.loads(_cli(tmp_path, path, "--format", "json", "--allow", "allow.toml").stdout)
    hit = next(f for f in allowed["submissions"][0]["findings"] if "does not parse" in f["message"])
    assert hit["suppressed"] and hit["suppression_reason"].startswith("parse error accepted")
    (tmp_path / "bad.json").write_text('[{"path": "x"}]', encoding="utf-8")
    bad = _cli(tmp_path, path, "--allow", "bad.json")
    assert bad.returncode == 2 and "bad.json" in bad.stderr and "`rule`" in bad.stderr


def _legality_example():
    """Every real legality rule's line-anchored ILLEGAL error example (the test picks one that decides)."""
    from rules import all_rules

    for rule in all_rules():
        if rule.CATEGORY != "legality":
            continue
        for ex in rule.ILLEGAL:
            if ex.severity != "error" or ex.line is None or ex.options:
                continue
            yield rule, ex


def test_cli_exit_codes_follow_reviewer_suppressions_not_source_comments(tmp_path):
    from harness.engine import audit_submission

    for n, (rule, ex) in enumerate(_legality_example()):
        folder = tmp_path / f"t{n}" / "records" / "track_10min_16mb" / "2026-04-20_Example"
        folder.mkdir(parents=True)
        materialise(ex, folder)
        sub = audit_submission(folder)
        deciding = [f for f in sub.findings if f.category == "legality" and f.severity == "error"]
        if sub.verdict != "illegal" or {f.rule for f in deciding} != {rule.ID}:
            continue
        cwd, rel = folder.parents[2], "records/track_10min_16mb/2026-04-20_Example"
        assert _cli(cwd, rel).returncode == 1
        # the submitter's comment on the flagged line changes nothing
        target = folder / ex.file
        lines = target.read_text(encoding="utf-8").splitlines()
        lines[ex.line - 1] += f"  # golfaudit: ignore[{rule.ID}]"
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        commented = _cli(cwd, rel, "--format", "json")
        assert commented.returncode == 1
        assert json.loads(commented.stdout)["submissions"][0]["verdict"] == "illegal"
        # the reviewer's allow entry with a reason does
        (cwd / "allow.json").write_text(json.dumps([{"path": rel, "rule": rule.ID, "reason": "reviewed"}]),
                                        encoding="utf-8")
        allowed = _cli(cwd, rel, "--format", "json", "--allow", "allow.json")
        assert allowed.returncode == 0, allowed.stdout
        out = json.loads(allowed.stdout)["submissions"][0]
        assert out["verdict"] == "legal" and any(f["suppressed"] for f in out["findings"] if f["rule"] == rule.ID)
        # ...but not without a reason
        (cwd / "allow.json").write_text(json.dumps([{"path": rel, "rule": rule.ID}]), encoding="utf-8")
        assert _cli(cwd, rel, "--allow", "allow.json").returncode == 1
        return
    pytest.skip("no legality rule with a line-anchored ILLEGAL example yet")
