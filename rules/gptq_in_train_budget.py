"""GPTQ-IN-TRAIN-BUDGET: Hessian calibration on training data ends inside the 600 s training budget."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage
from harness.limits import TRAIN_BUDGET_S
from harness.measure import backing_logs
from harness.report import Finding
from rules._samples import line_of, new_log
from rules.base import Citation, Rule, folder, log
from rules.train_time_600s import budget_coverage, is_ten_minute, tolerance_s

LIMIT_S = TRAIN_BUDGET_S

NO_RESERVE = new_log(code=20, train_ms=599_500, gptq_reserve=0.0, hessian_s=11.3)
LATE = new_log(code=20, train_ms=599_800, gptq_reserve=None, hessian_s=4.7)
SMALL_RESERVE = new_log(code=20, train_ms=596_000, gptq_reserve=4.0, hessian_s=12.7)


class GptqInTrainBudget(Rule):
    ID = "GPTQ-IN-TRAIN-BUDGET"
    TITLE = "GPTQ calibration on training data fits in the 600 s training budget"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "run")
    READS = ("logs",)
    EFFECTIVE_FROM = dt.date(2026, 3, 25)
    CITATION = Citation("#677/#1017 (via copy); 03-25 record README",
                        "No compute may be transferred between phases", "#1017")
    RATIONALE = ("Collecting GPTQ Hessians reads training data, so it is training: it must end inside the "
                 "600 s budget, which is why records reserve seconds (`gptq:reserving 12s, "
                 "effective=588000ms`). golfaudit adds the logged train time and `GPTQ:collected N Hessians in "
                 "Xs`. Quantizing and compressing without data afterwards is accepted practice; self-generated "
                 "calibration reads no training data and is not checked. When another log of the same seed fits the "
                 "budget (a compliance rerun, as in 04-29), the overrun is a warning. Ruled around 2026-03-25: "
                 "earlier submissions get a warning.")
    LEGAL = [
        log(new_log(code=20), "592.1 s + 3.8 s of Hessians = 595.9 s"),
        log(new_log(code=20, train_ms=588_119, gptq_reserve=12.0, hessian_s=12.7),
            "588.1 s + 12.7 s = 600.8 s, inside the 1 s tolerance"),
        log(new_log(code=20, gptq_reserve=None, hessian_s=None), "no train-data calibration"),
    ]
    ILLEGAL = [
        log(NO_RESERVE, "no reserve: 599.5 s + 11.3 s", line_of(NO_RESERVE, "GPTQ:collected")),
        log(LATE, "calibration after a full 599.8 s of training", line_of(LATE, "GPTQ:collected")),
        log(SMALL_RESERVE, "a 4 s reserve for 12.7 s of Hessians", line_of(SMALL_RESERVE, "GPTQ:collected")),
        folder({"train_seed42.log": NO_RESERVE, "train_seed42_rerun.log": new_log(code=20)},
               "over in the original run, a rerun of the seed fits: warning", line_of(NO_RESERVE, "GPTQ:collected"),
               file="train_seed42.log", severity="warning"),
        log(NO_RESERVE, "before the ruling: reported as a warning", line_of(NO_RESERVE, "GPTQ:collected"),
            severity="warning", options={"rules_as_of": dt.date(2026, 3, 20)}),
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
            hess = lg.gptq_hessian_s
            train = lg.train_time_ms or lg.last_step_time_ms
            if hess is None or train is None or hess.line < train.line:
                continue
            total = train.value / 1000 + hess.value
            if total <= LIMIT_S + tol:
                continue
            reserve = (f"a {lg.gptq_reserve_s.value:g} s reserve" if lg.gptq_reserve_s is not None
                       else "no reserve")
            message = (f"{lg.name}: training {train.value / 1000:,.3f} s + GPTQ Hessians on training data "
                       f"{hess.value:g} s = {total:,.1f} s, over the {LIMIT_S:.0f} s training budget ({reserve})")
            rerun = _rerun_within(sub, lg, tol)
            if rerun is not None:
                yield self.finding(message + f"; {rerun.name} reruns seed {lg.seed} within the budget",
                                   lg.name, hess.line, severity="warning", evidence=hess.text)
            elif id(lg) in backing:
                yield self.finding(message, lg.name, hess.line, evidence=hess.text)
            else:
                yield self.finding(message + "; this log backs no claimed score", lg.name, hess.line,
                                   severity="warning", evidence=hess.text)


def _total_s(lg) -> float | None:
    train = lg.train_time_ms or lg.last_step_time_ms
    if train is None:
        return None
    return train.value / 1000 + (lg.gptq_hessian_s.value if lg.gptq_hessian_s is not None else 0.0)


def _rerun_within(sub, lg, tol: float):
    """Another log of the same seed whose training + calibration fits: a compliance rerun (04-29)."""
    if lg.seed is None:
        return None
    for other in sub.logs:
        total = _total_s(other)
        if (other is not lg and other.seed == lg.seed and other.final is not None and total is not None
                and other.gptq_hessian_s is not None and total <= LIMIT_S + tol):
            return other
    return None
