"""TRAIN-TIME-600S: training stops within 600 s of wall clock (10-minute track only)."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage, not_applicable
from harness.limits import TRAIN_BUDGET_S, is_ten_minute
from harness.measure import backing_logs
from harness.report import Finding
from rules._samples import line_of, new_log, old_log
from rules.base import Citation, Rule, log

LIMIT_S = TRAIN_BUDGET_S

SLOW_OLD = old_log(train_ms=612_004)
SLOW_NEW = new_log(train_ms=640_120, code=20)
LONG_NO_STOP = "\n".join(["step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.02ms",
                          "step:20000/20000 train_loss:2.0101 train_time:2400107ms step_avg:120.01ms",
                          "step:20000/20000 val_loss:2.0101 val_bpb:1.1905 train_time:2400107ms step_avg:120.01ms",
                          "final_int8_zlib_roundtrip_exact val_loss:2.01 val_bpb:1.19050000"]) + "\n"


def tolerance_s(sub) -> float:
    """Allowed overshoot in seconds (`time_tolerance_s`, default 1 s: the baseline itself logs 600,038 ms)."""
    try:
        return float(sub.options.extra.get("time_tolerance_s", 1.0))
    except (TypeError, ValueError):
        return 1.0


def budget_coverage(rule: Rule, ctx: AuditContext) -> Coverage:
    """The 600 s budgets bind the 10-minute track only; elsewhere the rule does not apply."""
    sub = ctx.submission
    if not is_ten_minute(sub):
        return not_applicable(f"the 600 s budgets bind the 10-minute track, not {sub.track}")
    return Rule.coverage(rule, ctx)


class TrainTime600s(Rule):
    ID = "TRAIN-TIME-600S"
    TITLE = "Training finishes within 600 s (10-minute track)"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "run")
    READS = ("logs",)
    CITATION = Citation("README, Leaderboard rules",
                        "Final leaderboard submissions must run in under 10 minutes on 8xH100s (specifically "
                        "the SXM variant)", "README")
    RATIONALE = ("The record track allows 10 minutes of training. The logs print the wall-clock train time at "
                 "the stop (`stopping_early: wallclock_cap train_time:NNNms`) or on the last step line. A small "
                 "overshoot is tolerated (default 1 s, `time_tolerance_s`): the baseline itself logs 600,038 ms. "
                 "A log that backs no claimed score (a rerun, a longer experiment kept in the folder) only "
                 "warns. Non-record tracks are not bound by this rule.")
    LEGAL = [
        log(old_log(), "baseline: 600,038 ms, within the 1 s tolerance"),
        log(new_log(code=20), "592,054 ms with an 8 s GPTQ reserve"),
        log(new_log(code=20, train_ms=600_900), "600.9 s, inside a 1 s tolerance"),
    ]
    ILLEGAL = [
        log(SLOW_OLD, "612 s of training", line_of(SLOW_OLD, "stopping_early")),
        log(SLOW_NEW, "640 s of training, 2026-04 format", line_of(SLOW_NEW, "stopping_early")),
        log(LONG_NO_STOP, "no stop line: the last step line shows 2,400 s", 3),
        log(new_log(code=20, train_ms=600_900), "600.9 s with the tolerance set to 0",
            line_of(new_log(code=20, train_ms=600_900), "stopping_early"),
            options={"extra": {"time_tolerance_s": 0.0}}),
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
            hit = lg.train_time_ms or lg.last_step_time_ms
            if hit is None:
                continue
            seconds = hit.value / 1000
            if seconds <= LIMIT_S + tol:
                continue
            message = (f"{lg.name}: training ran {seconds:,.3f} s ({hit.value} ms), over the {LIMIT_S:.0f} s "
                       f"budget (tolerance {tol:g} s)")
            if id(lg) in backing:
                yield self.finding(message, lg.name, hit.line, evidence=hit.text)
            else:
                yield self.finding(message + "; this log backs no claimed score", lg.name, hit.line,
                                   severity="warning", evidence=hit.text)
