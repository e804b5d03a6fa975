"""SIG-0.005-NATS: a record beats the SOTA by 0.005 nats at p < 0.01 (README), or at least p < 0.25 (practice)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage, checked, not_applicable, not_checked
from harness.logs import VARIANT
from harness.measure import seed_scores
from harness.options import SotaReference
from harness.report import Finding
from harness.stats import PRACTICE_P, README_MARGIN_NATS, README_P, significance
from rules._samples import old_log
from rules.base import Citation, Rule, folder

SP1024 = "./data/tokenizers/fineweb_1024_bpe.model"
SOTA = SotaReference("prior record", (1.1250, 1.1254, 1.1247), (1.8995, 1.9002, 1.8990), SP1024)
SOTA_8192 = SotaReference("sp8192 record", (1.0810, 1.0812, 1.0808), (2.7920, 2.7925, 2.7915),
                          "./data/tokenizers/fineweb_8192_bpe.model")


def _run(scores: tuple[float, ...], losses: tuple[float, ...]) -> dict[str, str]:
    files = {"train_gpt.py": "x = 1\n"}
    for seed, bpb, loss in zip((1337, 42, 2025), scores, losses):
        files[f"train_seed{seed}.log"] = old_log("legal_ttt", bpb, loss, seed=seed, eval_ms=410268)
    return files


BIG_GAIN = _run((1.1190, 1.1193, 1.1188), (1.8894, 1.8899, 1.8891))
SMALL_GAIN = _run((1.1232, 1.1245, 1.1226), (1.8965, 1.8987, 1.8955))
NO_GAIN = _run((1.1252, 1.1262, 1.1249), (1.8999, 1.9015, 1.8994))


def _variant(path: str | None) -> str | None:
    m = VARIANT.search(path or "")
    if not m:
        return None
    if m.group("byte"):
        return "byte260"
    base = m.group("v") or f"sp{m.group('tv')}"
    return f"{base}-caseops" if (m.group("caseops") or m.group("tcase")) else base


class Sig0005Nats(Rule):
    ID = "SIG-0.005-NATS"
    TITLE = "Beats the SOTA by 0.005 nats at p < 0.01 (README) / p < 0.25 (practice)"
    CATEGORY = "eligibility"
    SEVERITY = "error"
    READS = ("logs", "sota")
    CITATION = Citation("README, Leaderboard rules",
                        "They must beat the existing SOTA by at least 0.005 nats.", "README")
    RATIONALE = ("A new record must beat the record before it (given with --sota) by at least 0.005 nats with "
                 "enough seeds to show p < 0.01; maintainers later used a looser p < 0.25 progression cutoff "
                 "(#1902), so both are reported. One-sided Welch t-tests on per-seed scores: nats per token "
                 "(val_loss) when both use the same tokenizer, else nats per byte (val_bpb x ln 2). Missing "
                 "the practice bar is an error, meeting only it a warning. Pure systems speedups are exempt by "
                 "the README; golfaudit cannot tell, so review those by hand. Without --sota: not checked.")
    LEGAL = [
        folder(BIG_GAIN, "0.01 nats better on 3 seeds", options={"sota": SOTA}),
        folder(_run((1.0710, 1.0712, 1.0709), (2.767, 2.768, 2.766)),
               "different tokenizer: compared in nats per byte", options={"sota": SOTA_8192}),
        folder(BIG_GAIN, "no --sota: an info finding only", severity="info"),
    ]
    ILLEGAL = [
        folder(NO_GAIN, "no better than the SOTA", options={"sota": SOTA}),
        folder(SMALL_GAIN, "better, but not by 0.005 nats at p < 0.01", options={"sota": SOTA},
               severity="warning"),
        folder({"train_gpt.py": "x = 1\n", "train.log": old_log("legal_ttt", 1.10, 1.85, eval_ms=410268)},
               "one seed cannot be tested", options={"sota": SOTA}, severity="warning"),
    ]

    def coverage(self, ctx: AuditContext) -> Coverage:
        sub = ctx.submission
        if sub.track != "10min-16mb":
            return not_applicable(f"significance applies to record claims on the 10-minute track, not {sub.track}")
        if sub.options.sota is None:
            return not_checked("no --sota given: the previous record to compare with is unknown")
        if not seed_scores(sub):
            return not_checked("no final score in any log")
        return checked(f"{len(seed_scores(sub))} seed score(s) against the previous record (--sota)")

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        if sub.track != "10min-16mb":
            return
        sota = sub.options.sota
        logs = list(seed_scores(sub).values())
        if not logs:
            return
        if sota is None:
            yield self.finding("significance against the SOTA was not checked (run with --sota)",
                               severity="info")
            return
        ours = {lg.variant for lg in logs}
        theirs = _variant(sota.tokenizer)
        losses = [lg.final_loss for lg in logs]
        if (len(ours) == 1 and theirs is not None and theirs in ours and None not in losses
                and len(sota.val_loss) == len(sota.val_bpb) and sota.val_loss):
            result = significance(losses, list(sota.val_loss), "nats/token")
        else:
            ln2 = math.log(2)
            result = significance([lg.final.value * ln2 for lg in logs], [b * ln2 for b in sota.val_bpb],
                                  "nats/byte")
        summary = (f"vs {sota.name}: mean {result.mean_new:.5f} vs {result.mean_sota:.5f} {result.unit} "
                   f"(improvement {result.improvement:+.5f}, n={result.n_new} vs {result.n_sota})")
        if math.isnan(result.p_margin):
            yield self.finding(f"{summary}; a t-test needs at least 2 seeds on each side", severity="warning")
            return
        bars = (f"README bar (>= {README_MARGIN_NATS} nats, p < {README_P}): p = {result.p_margin:.4g}; "
                f"practice bar (any gain, p < {PRACTICE_P}): p = {result.p_any:.4g}")
        if result.meets_readme:
            yield self.finding(f"{summary}; meets the README bar. {bars}", severity="info")
        elif result.meets_practice:
            yield self.finding(f"{summary}; meets only the practice bar. {bars}", severity="warning")
        else:
            yield self.finding(f"{summary}; not a significant improvement. {bars}")
