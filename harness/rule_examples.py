"""Run a rule's own LEGAL/ILLEGAL examples (used by the test suite and `audit.py` self-checks)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.engine import audit_submission
from harness.options import AuditOptions
from harness.registry import Example, Rule
from harness.report import Finding


def materialise(example: Example, folder: Path) -> Path:
    for name, text in example.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def run_example(rule: type[Rule], example: Example) -> list[Finding]:
    """Findings of `rule` alone on the example folder."""
    with tempfile.TemporaryDirectory(prefix="golfaudit-example-") as tmp:
        root = Path(tmp) / "records" / "track_10min_16mb" / "2026-04-20_Example"
        root.mkdir(parents=True)
        materialise(example, root)
        opts = example.options
        options = AuditOptions(rules_as_of=opts.get("rules_as_of"), sota=opts.get("sota"),
                               extra=dict(opts.get("extra", {})))
        report = audit_submission(root, options, rule_ids=[rule.ID])
        return [f for f in report.findings if f.rule == rule.ID]


def check_legal(rule: type[Rule], example: Example) -> str | None:
    """None when the legal example draws no error or warning from the rule, else what went wrong."""
    bad = [f for f in run_example(rule, example) if f.severity in ("error", "warning")]
    if bad:
        return f"LEGAL example ({example.why}) was flagged: " + "; ".join(f"{f.line}: {f.message}" for f in bad)
    return None


def check_illegal(rule: type[Rule], example: Example) -> str | None:
    """None when the illegal example is flagged at the expected severity (and line, when given)."""
    found = [f for f in run_example(rule, example) if f.severity == example.severity]
    if not found:
        return f"ILLEGAL example ({example.why}) drew no {example.severity} finding"
    if example.line is not None:
        lines = {(f.file, ln) for f in found for ln in range(f.line or 0, (f.end_line or f.line or 0) + 1)}
        if (example.file, example.line) not in lines:
            got = ", ".join(f"{f.file}:{f.line}" for f in found)
            return f"ILLEGAL example ({example.why}) flagged at {got}, expected {example.file}:{example.line}"
    return None
