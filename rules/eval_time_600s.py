"""EVAL-TIME-600S: evaluation (incl. TTT, sliding window, rescoring) within 600 s (10-minute track)."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage
from harness.limits import EVAL_BUDGET_S, is_ten_minute
from harness.measure import backing_logs
from harness.report import Finding
from rules._samples import line_of, new_log, old_log
from rules.base import Citation, Rule, log
from rules.train_time_600s import budget_coverage, tolerance_s

LIMIT_S = EVAL_BUDGET_S

SLOW_TOTAL = new_log(code=20, eval_ms=688_000, total_eval_s=688.0)
SLOW_PHASE = old_log("legal_ttt", 1.1192, 1.8898, eval_ms=655_012)
SUM_OVER = old_log("legal_ttt", 1.1192, 1.8898, eval_ms=560_000,
                   extra=("final_int6_sliding_window val_loss:1.9000 val_bpb:1.1250 eval_time:74066ms",))


class EvalTime600s(Rule):
    ID = "EVAL-TIME-600S"
    TITLE = "Evaluation finishes within 600 s (10-minute track)"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "run", "eval")
    READS = ("logs",)
    CITATION = Citation("README, Leaderboard rules",
                        "take more than 10 minutes on 8xH100 to evaluate (Note: This limit is in addition to the "
                        "10 minutes of training time allowed!)", "README")
    RATIONALE = ("Evaluation, including test-time training, sliding windows and any rescoring, has its own "
                 "10 minutes. Newer logs print `total_eval_time:Xs`; older ones print `eval_time:NNNms` on each "
                 "score line. The reported score's own phase over the limit is an error; when only the phases "
                 "summed exceed it (no total printed) it is a warning, since which phases the timer covered is "
                 "unruled (RULES.md G2). Tolerance as for training (`time_tolerance_s`, default 1 s).")
    LEGAL = [
        log(new_log(code=20), "phased TTT, total_eval_time 525.5 s"),
        log(old_log("legal_ttt", 1.1192, 1.8898, eval_ms=410_268), "legal TTT, 410 s"),
    ]
    ILLEGAL = [
        log(SLOW_TOTAL, "total_eval_time 688 s", line_of(SLOW_TOTAL, "total_eval_time")),
        log(SLOW_PHASE, "the reported legal_ttt phase alone takes 655 s", line_of(SLOW_PHASE, "legal_ttt ")),
        log(SUM_OVER, "phases sum to 635 s with no total printed", line_of(SUM_OVER, "legal_ttt "),
            severity="warning"),
    ]

    def coverage(self, ctx: AuditContext) -> Coverage:
        return budget_coverage(self, ctx)

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        if not is_ten_minute(sub):
            return
        tol = tolerance_s(sub)
        backing = {id(lg) for lg in backing_logs(sub)}
        for lg in sub.logs:
            for finding in self._one(lg, tol):
                if id(lg) not in backing and finding.severity == "error":
                    finding = self.finding(finding.message + "; this log backs no claimed score", finding.file,
                                           finding.line, severity="warning", evidence=finding.evidence)
                yield finding

    def _one(self, lg, tol: float) -> Iterable[Finding]:
        if lg.total_eval_time_s is not None:
            hit = lg.total_eval_time_s
            if hit.value > LIMIT_S + tol:
                yield self.finding(f"{lg.name}: total_eval_time {hit.value:,.1f} s, over the {LIMIT_S:.0f} s "
                                   f"eval budget (tolerance {tol:g} s)", lg.name, hit.line, evidence=hit.text)
            return
        if lg.final is not None and lg.eval_time_ms is not None and lg.eval_time_ms / 1000 > LIMIT_S + tol:
            phase = next((h for h in lg.eval_phases if h.value == lg.eval_time_ms), None)
            line = phase.line if phase else lg.final.line
            yield self.finding(f"{lg.name}: the reported score's eval phase ({lg.final.label}) took "
                               f"{lg.eval_time_ms / 1000:,.1f} s, over the {LIMIT_S:.0f} s eval budget",
                               lg.name, line, evidence=phase.text if phase else lg.final.text)
            return
        total_ms = sum(h.value for h in lg.eval_phases)
        if total_ms / 1000 > LIMIT_S + tol:
            parts = ", ".join(f"{h.label} {h.value / 1000:.1f} s" for h in lg.eval_phases)
            longest = max(lg.eval_phases, key=lambda h: h.value)
            yield self.finding(f"{lg.name}: eval phases sum to {total_ms / 1000:,.1f} s ({parts}), over "
                               f"{LIMIT_S:.0f} s; the log prints no total, so which phases count is unclear",
                               lg.name, longest.line, severity="warning", evidence=longest.text)
