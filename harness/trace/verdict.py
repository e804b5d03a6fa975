"""Findings from a traced timeline: TTT-SCORE-FIRST / TTT-NO-RESCORE violations, or an info proof."""

from __future__ import annotations

from harness import registry
from harness.report import Finding
from harness.trace.timeline import Timeline


def _span(pos: list[int]) -> str:
    return f"{len(pos)} positions ({pos[0]}..{pos[-1]})" if pos else "no positions"


def _finding(rule: str, severity: str, confidence: str, file: str, message: str, evidence: str) -> Finding:
    return registry.get(rule).finding(message, file, severity=severity, confidence=confidence, evidence=evidence)


def findings(tl: Timeline, file: str, error: str | None = None) -> list[Finding]:
    """What the run proved. An incomplete trace is a hygiene warning, never a legality verdict."""
    if error or not tl.val_tokens or not tl.reported_score:
        why = error or ("the loader returned no validation tokens to tag" if not tl.val_tokens else
                        "no printed val_bpb could be tied to a score made of validation losses")
        return [_finding("TRACE", "warning", "high", file, f"runtime trace incomplete: {why}", "")]
    if tl.steps_after_read:
        return [_finding("TRACE", "warning", "high", file,
                         f"runtime trace incomplete: {tl.steps_after_read} optimizer steps ran between the last "
                         f"traced score (event {tl.reported_reads[-1]}) and the printed line {tl.reported_line!r}; "
                         f"that number comes from code the trace could not follow", "")]
    where = f"reported line: {tl.reported_line!r} (matched by {tl.matched_by}, read-out event " \
            f"{', '.join(map(str, tl.reported_reads))})"
    out: list[Finding] = []
    first = tl.trained_before_reported()
    if first:
        p = first[0]
        out.append(_finding(
            "TTT-SCORE-FIRST", "error", "high", file,
            f"at run time {_span(first)} of the reported score were trained on before the reported score of "
            f"them was taken (position {p}: trained at event {tl.first_trained[p]}, reported score taken at "
            f"event {tl.reported_score[p]})",
            where))
    again = tl.rescore_violations()
    if again:
        p = again[0]
        out.append(_finding(
            "TTT-NO-RESCORE", "error", "high", file,
            f"at run time the reported score re-scores {_span(again)} after training on them (position {p}: "
            f"scored at event {tl.first_scored[p]}, trained at event {tl.first_trained[p]}, reported score "
            f"taken at event {tl.reported_score[p]})", where))
    if not out:
        trained = tl.trained_after_score()
        out.append(_finding(
            "TTT-SCORE-FIRST", "info", "high", file,
            f"runtime proof: each of the {len(tl.reported_score)} positions in the reported score was scored "
            f"before any update on it ({len(trained)} of them trained on afterwards), and none was re-scored",
            where))
    return out
