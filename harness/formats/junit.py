"""JUnit XML for CI test views: one testsuite per submission, one testcase per rule (passes included).

Row status comes from harness.formats.rulestatus: `fail` and `needs-review` are failures (type says which),
`n/a` and `not-checked` are skipped (with the reason), `warn`/`pass` pass with their warnings, info and suppressed findings in system-out. A
submission that could not be read gets an `error` testcase named `load`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.formats import register
from harness.formats.rulestatus import RuleRow, rows_for, rules_in
from harness.report import Finding, Report, SubmissionReport

FAILING = ("fail", "needs-review")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: str) -> str:
    """Characters XML 1.0 cannot hold (NUL bytes from logs, lone surrogates) become U+FFFD."""
    return NOT_XML.sub("\ufffd", text)


def _where(sub: SubmissionReport, f: Finding) -> str:
    where = f"{sub.path}/{f.file}" if f.file and not sub.path.endswith(f"/{f.file}") else sub.path
    return where + (f":{f.line}" if f.line else "")


def _line(sub: SubmissionReport, f: Finding) -> str:
    mark = f" [suppressed: {f.suppression_reason or 'no reason given'}]" if f.suppressed else ""
    return _x(f"{_where(sub, f)}  {f.rule}  {f.severity}/{f.confidence}{mark}  {f.message}")


def _case(suite: ET.Element, sub: SubmissionReport, row: RuleRow) -> None:
    case = ET.SubElement(suite, "testcase", {"classname": _x(sub.path), "name": _x(f"{row.rule.id}: {row.rule.title}"),
                                             "time": "0"})
    active = [f for f in row.findings if not f.suppressed]
    if row.status in FAILING:
        deciding = [f for f in active if f.severity == "error"]
        first = deciding[0] if deciding else active[0]
        body = "\n".join(_line(sub, f) + (f"\n{_x(f.evidence)}" if f.evidence else "") for f in deciding or active)
        failure = ET.SubElement(case, "failure", {"message": _x(f"{row.status}: {first.message}"),
                                                 "type": row.status})
        failure.text = body + _x(f"\n\nCitation ({first.source_weight}): {first.citation}")
    elif row.status == "n/a":
        ET.SubElement(case, "skipped", {"message": _x(f"not applicable: {row.note}")})
    elif row.status == "not-checked":
        ET.SubElement(case, "skipped", {"message": _x(f"not checked: {row.note}")})
    others = [f for f in row.findings if row.status not in FAILING or f.severity != "error" or f.suppressed]
    if others:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(_line(sub, f) for f in others)


def _suite(root: ET.Element, sub: SubmissionReport, metas) -> None:
    rows = rows_for(sub, metas)
    failures = sum(1 for r in rows if r.status in FAILING)
    skipped = sum(1 for r in rows if r.status in ("n/a", "not-checked"))
    errors = 1 if sub.error else 0
    suite = ET.SubElement(root, "testsuite", {
        "name": _x(sub.path), "tests": str(len(rows) + errors), "failures": str(failures), "errors": str(errors),
        "skipped": str(skipped), "time": "0"})
    props = ET.SubElement(suite, "properties")
    for name, value in (("verdict", sub.verdict), ("eligible", {True: "yes", False: "no", None: "n/a"}[sub.eligible]),
                        ("track", sub.track)):
        ET.SubElement(props, "property", {"name": name, "value": _x(value)})
    if sub.error:
        case = ET.SubElement(suite, "testcase", {"classname": _x(sub.path), "name": "load", "time": "0"})
        err = ET.SubElement(case, "error", {"message": _x(sub.error), "type": "unreadable"})
        err.text = _x(sub.error)
    for row in rows:
        _case(suite, sub, row)


@register("junit")
def render(report: Report, **_: object) -> str:
    metas = rules_in(report.submissions)
    root = ET.Element("testsuites", {"name": f"{report.tool} {report.version} ({report.ruleset})"})
    for sub in report.submissions:
        _suite(root, sub, metas)
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in root)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in root)))
    root.set("errors", str(sum(int(s.get("errors", "0")) for s in root)))
    root.set("skipped", str(sum(int(s.get("skipped", "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
