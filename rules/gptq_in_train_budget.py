"""GPTQ-IN-TRAIN-BUDGET: Hessian calibration on training data ends inside the 600 s training budget."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage
from harness.limits import TRAIN_BUDGET_S, is_ten_minute
from harness.measure import backing_logs
from harness.report import Finding
from harness.scan.train_after import train_data_after_training
from rules._samples import line_of, new_log
from rules.base import Citation, Rule, code, folder, log
from rules.train_time_600s import budget_coverage, tolerance_s

LIMIT_S = TRAIN_BUDGET_S
# With less than this left of the budget after the loop, a calibration whose time the log does not print
# may or may not fit (a 0.15 s temperature fit does, 256 GPTQ batches do not).
UNSURE_S = 5.0

NO_RESERVE = new_log(code=20, train_ms=599_500, gptq_reserve=0.0, hessian_s=11.3)
LATE = new_log(code=20, train_ms=599_800, gptq_reserve=None, hessian_s=4.7)
SMALL_RESERVE = new_log(code=20, train_ms=596_000, gptq_reserve=4.0, hessian_s=12.7)

_CALIBRATE_AFTER_LOOP = '''import glob
import os
import time

import numpy as np
import torch


class Hyperparameters:
    train_files = os.path.join("./data/datasets/fineweb10B_sp8192", "fineweb_train_*.bin")
    calibration_batches = int(os.environ.get("CALIBRATION_BATCHES", 256))


class TrainLoader:
    def __init__(self, h):
        self.files = sorted(glob.glob(h.train_files))

    def next_batch(self):
        return torch.from_numpy(np.fromfile(self.files[0], dtype="<u2", offset=1024)[:2049].astype(np.int64))


def collect_hessians(model, loader, n):
    hessians = {}
    for _ in range(n):
        model(loader.next_batch())
    return hessians


def main(h, model, opt, stop_ms):
    loader = TrainLoader(h)
    start = time.perf_counter()
    while (time.perf_counter() - start) * 1000 < stop_ms:
        model(loader.next_batch()).backward()
        opt.step()
    print(f"stopping_early: wallclock_cap train_time:{(time.perf_counter() - start) * 1000:.0f}ms")
    calib = TrainLoader(h)
    t0 = time.perf_counter()
    hessians = collect_hessians(model, calib, h.calibration_batches)
    print(f"gptq:calibrated {len(hessians)} layers in {time.perf_counter() - t0:.1f}s")
    return hessians
'''
_CALIBRATE_SELF_GENERATED = _CALIBRATE_AFTER_LOOP.replace(
    "    calib = TrainLoader(h)\n", "    calib = model.generate(64, 2048)\n")
FULL_CAP = new_log(code=20, train_ms=600_061, gptq_reserve=None, hessian_s=None)
RESERVED = new_log(code=20, train_ms=588_102, gptq_reserve=12.0, hessian_s=None,
                   extra=("gptq:calibrated 66 layers in 6.8s",))
CALIBRATED_LATE = new_log(code=20, train_ms=599_400, gptq_reserve=None, hessian_s=None,
                          extra=("gptq:calibrated 66 layers in 6.8s",))


class GptqInTrainBudget(Rule):
    ID = "GPTQ-IN-TRAIN-BUDGET"
    TITLE = "Training-data reads after the training loop fit in the 600 s budget"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "run")
    READS = ("logs",)
    EFFECTIVE_FROM = dt.date(2026, 3, 23)
    EFFECTIVE_SOURCE = ("the maintainers' invalid list in #677/#1017 (MAINT, known via a third-party copy), whose "
                        "GPTQ-calibration entries are PRs opened from 2026-03-23 on")
    CITATION = Citation("#677/#1017 (via copy), maintainers' invalid list; #1019 README; merged #1868 README",
                        "No compute may be transferred between phases", "MAINT")
    RATIONALE = ("Reading training data after the training loop (GPTQ Hessians from calibration batches of "
                 "`fineweb_train_*`, a loader rebuilt from `train_files`/`train_pattern`, directly or through a "
                 "config or a loader class) is still training: it must end inside the 600 s budget, which is why "
                 "records reserve seconds (`gptq:reserving 12s, effective=588000ms`). golfaudit finds such reads "
                 "in the code (harness.scan.train_after) and adds the loop's logged train time and the logged "
                 "calibration time (`GPTQ:collected N Hessians in Xs`, `gptq:calibrated N layers in Xs`). A loop "
                 "that ran to the full cap leaves no time for a calibration whose time is not logged: an error "
                 "(medium confidence); with under 5 s left it is a warning. Quantizing and compressing without "
                 "data afterwards is accepted practice; self-generated calibration reads no training data and is "
                 "not checked. When another log of the same seed fits the budget (a compliance rerun, as in "
                 "04-29), the overrun is a warning. In force from 2026-03-23: the maintainers' invalid list "
                 "(#677/#1017, source weight MAINT via a copy) names GPTQ-calibration PRs opened from that day; "
                 "earlier submissions get a warning.")
    LEGAL = [
        log(new_log(code=20), "592.1 s + 3.8 s of Hessians = 595.9 s"),
        log(new_log(code=20, train_ms=588_119, gptq_reserve=12.0, hessian_s=12.7),
            "588.1 s + 12.7 s = 600.8 s, inside the 1 s tolerance"),
        log(new_log(code=20, gptq_reserve=None, hessian_s=None), "no train-data calibration"),
        code(_CALIBRATE_AFTER_LOOP, "calibration on training data after a loop that reserved 12 s: 588.1 s + 6.8 s",
             extra={"train_seed42.log": RESERVED}),
        code(_CALIBRATE_SELF_GENERATED, "the loop ran to the cap, but calibration uses self-generated tokens",
             extra={"train_seed42.log": FULL_CAP}),
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
        folder({"train_gpt.py": _CALIBRATE_AFTER_LOOP, "train_seed42.log": FULL_CAP},
               "256 calibration batches of fineweb_train_* after a loop that ran to the full 600 s cap; the log "
               "prints no calibration time", line_of(FULL_CAP, "stopping_early"), file="train_seed42.log"),
        folder({"train_gpt.py": _CALIBRATE_AFTER_LOOP, "train_seed42.log": CALIBRATED_LATE},
               "599.4 s of training + 6.8 s of calibration on training data",
               line_of(CALIBRATED_LATE, "gptq:calibrated"), file="train_seed42.log"),
    ]

    def coverage(self, ctx: AuditContext) -> Coverage:
        return budget_coverage(self, ctx)

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        if not is_ten_minute(sub):
            return
        tol = tolerance_s(sub)
        backing = {id(lg) for lg in backing_logs(sub)}
        late = train_data_after_training(ctx)
        read = late[0] if late else None
        where = f"; {read.describe()}" if read is not None else ""
        for lg in sub.logs:
            hess = lg.gptq_hessian_s
            train = lg.train_time_ms or lg.last_step_time_ms
            if train is None:
                continue
            reserve = (f"a {lg.gptq_reserve_s.value:g} s reserve" if lg.gptq_reserve_s is not None
                       else "no reserve")
            timed = hess is not None and hess.line >= train.line and ("GPTQ" in hess.text or read is not None)
            if timed:
                total = train.value / 1000 + hess.value
                if total <= LIMIT_S + tol:
                    continue
                message = (f"{lg.name}: training {train.value / 1000:,.3f} s + calibration on training data "
                           f"{hess.value:g} s = {total:,.1f} s, over the {LIMIT_S:.0f} s training budget "
                           f"({reserve}){where}")
                yield from self._judged(sub, lg, message, hess, backing, tol, "high")
            elif read is not None:
                train_s = train.value / 1000
                left = LIMIT_S - train_s
                if left > UNSURE_S:
                    continue
                message = (f"{lg.name}: the training loop ran {train_s:,.3f} s ({reserve}){where}; the log prints "
                           f"no calibration time")
                if left <= 0:
                    yield from self._judged(sub, lg, message + ", and no time of the 600 s budget was left for it",
                                            train, backing, tol, "medium")
                else:
                    yield self.finding(message + f", so whether it fits the {left:.1f} s left of the budget is "
                                                 f"not known", lg.name, train.line, severity="warning",
                                       confidence="medium", evidence=train.text)

    def _judged(self, sub, lg, message: str, hit, backing: set[int], tol: float,
                confidence: str) -> Iterable[Finding]:
        rerun = _rerun_within(sub, lg, tol)
        if rerun is not None:
            yield self.finding(message + f"; {rerun.name} reruns seed {lg.seed} within the budget",
                               lg.name, hit.line, severity="warning", confidence=confidence, evidence=hit.text)
        elif id(lg) in backing:
            yield self.finding(message, lg.name, hit.line, confidence=confidence, evidence=hit.text)
        else:
            yield self.finding(message + "; this log backs no claimed score", lg.name, hit.line,
                               severity="warning", confidence=confidence, evidence=hit.text)


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
