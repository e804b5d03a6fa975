"""What SLOT and ETLB share: turning an eval-time adaptation (harness.scan.patterns.adaptations) of one kind
into findings, by whether its function runs, whether the branch holding it runs (harness.scan.pathstate, the
path state every code rule uses) and which targets the loss it minimises covers. Each rule supplies its
wording."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.config import function_uses, overall_use
from harness.scan.pathstate import code_state
from harness.scan.patterns import adaptations
from harness.scan.vocabulary import is_eval_function, is_val_word, words_of


@dataclass(frozen=True)
class Wording:
    """Format strings over {fn} {var} {line} {where} {loss_line}; `what` opens every message."""

    what: str
    unused: str
    scored: str
    context: str
    unclear: str


def adaptation_findings(rule, ctx: AuditContext, kind: str, words: Wording) -> Iterable[Finding]:
    """Findings for every `kind` adaptation inside evaluation code (an eval function or val-named arguments)."""
    for a in adaptations(ctx.units):
        if a.kind != kind:
            continue
        fn = a.function
        if not (is_eval_function(fn.name) or any(is_val_word(w) for w in words_of(fn.args))):
            continue
        state, why = overall_use(function_uses(ctx, fn.name))
        fields = {"fn": fn.name, "var": a.var, "line": a.line, "where": a.where or "same function",
                  "loss_line": a.loss_line}
        what = words.what.format(**fields)
        # the optimizer and the loss it minimises
        evidence = "\n".join(t for t in (a.unit.line_text(a.line),
                                          a.unit.line_text(a.loss_line) if a.loss_line != a.line else "") if t)
        end = max(a.line, a.loss_line or a.line)
        if state == "unused":
            yield rule.finding(f"{what}; {words.unused}", a.unit.name, a.line, end_line=end, severity="info",
                               evidence=evidence)
            continue
        if state == "off":
            yield rule.finding(f"{what}; the code ships but is switched off: {why}", a.unit.name, a.line,
                               end_line=end, severity="warning", evidence=evidence)
            continue
        branch = code_state(ctx, a.unit, a.node, calls=False) if a.node is not None else None
        if branch is not None and not branch.runs:
            # the function runs, but the branch holding the optimisation inside it is off as the folder runs it
            yield rule.finding(f"{what}; {branch.note}", a.unit.name, a.line, end_line=end, severity="warning",
                               evidence=evidence)
            continue
        text, conf = {"scored": (words.scored, "high"), "context": (words.context, "low")}.get(
            a.region, (words.unclear, "low"))
        msg = f"{what}; {text.format(**fields)}"
        if state == "unknown":
            conf = "low"
            msg += f" (whether it runs is unclear: {why})"
        else:
            msg += f" ({why})"
        yield rule.finding(msg, a.unit.name, a.line, end_line=end, confidence=conf, evidence=evidence)
