"""JUnit XML: golden file, and it parses with junitparser into one testcase per submission x rule."""

from __future__ import annotations

from junitparser import Error, Failure, JUnitXml, Skipped

from harness.formats import render
from harness.report import Finding, Report, judge
from tests.test_formats import FIXED_RULES, check_golden, fixed_rules, sample_report  # noqa: F401


def parse(text: str, tmp_path) -> JUnitXml:
    path = tmp_path / "report.xml"
    path.write_text(text, encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def test_junit_golden(fixed_rules):  # noqa: F811
    check_golden("report.junit.xml", render(sample_report(), "junit"))


def test_junit_parses_with_one_case_per_submission_and_rule(fixed_rules, tmp_path):  # noqa: F811
    xml = parse(render(sample_report(), "junit"), tmp_path)
    suites = list(xml)
    assert [s.name for s in suites] == [s.path for s in sample_report().submissions]
    outcome: dict[tuple[str, str], str] = {}
    for suite in suites:
        for case in suite:
            kinds = {type(r) for r in case.result}
            state = "failure" if Failure in kinds else "error" if Error in kinds else \
                "skipped" if Skipped in kinds else "pass"
            outcome[(suite.name, case.name.split(":")[0])] = state
    bad, odd, broken = (s.path for s in sample_report().submissions)
    for rule in FIXED_RULES:
        assert (bad, rule.id) in outcome and (odd, rule.id) in outcome     # passes are listed too
    assert outcome[(bad, "TTT-SCORE-FIRST")] == "failure"
    assert outcome[(bad, "RECORDS-FOLDER")] == "pass"                     # suppressed
    assert outcome[(bad, "EVAL-TIME-600S")] == "pass"
    assert outcome[(odd, "TTT-SCORE-FIRST")] == "failure"                 # needs-review fails the gate
    assert outcome[(odd, "EVAL-TIME-600S")] == "skipped"                  # not applicable
    assert outcome[(odd, "SIG-0.005-NATS")] == "skipped"
    assert outcome[(broken, "load")] == "error"
    assert suites[0].tests == len(FIXED_RULES) and suites[0].failures == 1
    failure = next(r for c in suites[1] for r in c.result if isinstance(r, Failure))
    assert failure.type == "needs-review" and "cannot decide" in failure.message


def test_junit_survives_control_characters(tmp_path, fixed_rules):  # noqa: F811
    f = Finding(rule="RECORDS-FOLDER", category="hygiene", severity="error", confidence="high",
                file="train.log", line=3, message="NUL \x00 byte in log", citation="c", source_weight="README",
                evidence="\x1b[31mred\x00")
    report = Report("golfaudit", "0.1.0", "t", (judge("records/x/y", "10min-16mb", [f], {}, {}),))
    xml = parse(render(report, "junit"), tmp_path)
    case = next(c for s in xml for c in s if c.name.startswith("RECORDS-FOLDER"))
    assert "NUL \ufffd byte" in case.result[0].message
