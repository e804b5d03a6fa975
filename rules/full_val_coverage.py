"""FULL-VAL-COVERAGE: the run scored the whole fixed validation split of its tokenizer."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.measure import backing_logs
from harness.report import Finding
from rules._samples import line_of, new_log, old_log
from rules.base import Citation, Rule, log

# Target-token counts the logs print (`val_tokens.numel() - 1`), per tokenizer (EVAL_INTERNALS §1).
KNOWN_VAL_TOKENS: dict[str, tuple[int, ...]] = {
    "sp1024": (62_021_632, 63_779_840),          # 63.78M: the older val export of the naive baseline
    "sp4096": (45_508_608, 45_514_752),          # two sp4096 builds
    "sp8192": (40_540_160,),
    "sp8192-caseops": (47_851_520,),
    "byte260": (151_130_112,),
}
TRUNCATION_SLACK = 0.01     # whole-sequence loaders drop < one sequence; more than 1% is a subset

CASEOPS_10K = new_log(code=20, val_tokens=9_662_464)
HALF = new_log(code=20, tokenizer="sp8192", val_tokens=20_270_080)
SHORT_TAIL = new_log(code=20, tokenizer="sp8192", val_tokens=40_538_112)


class FullValCoverage(Rule):
    ID = "FULL-VAL-COVERAGE"
    TITLE = "Every token of the full validation split is scored"
    CATEGORY = "legality"
    SEVERITY = "error"
    READS = ("logs",)
    CITATION = Citation("README, Leaderboard rules",
                        "Validation always runs on the full `fineweb_val_*` split, which is the fixed "
                        "first-50k-document set.", "README")
    RATIONALE = ("A score over a subset of the validation documents is not comparable. The logs print the "
                 "number of validation targets (`val_tokens: N`, `val_loader:shards ... tokens:N`); it must be "
                 "the known count for the run's tokenizer (read from the log's paths or vocab size). A count "
                 "short by under 1% is the whole-sequence truncation of the loader (warning); more is a "
                 "subset (error). An unknown count or tokenizer is a warning.")
    LEGAL = [
        log(old_log(), "sp1024: 62,021,632 targets"),
        log(new_log(code=20), "CaseOps SP8192: 47,851,520 targets"),
        log(new_log(code=20, tokenizer="sp4096", val_tokens=45_514_752), "the other sp4096 build"),
    ]
    ILLEGAL = [
        log(CASEOPS_10K, "CaseOps with a 10k-document val (9.66M targets)", line_of(CASEOPS_10K, "val_tokens")),
        log(HALF, "half of the sp8192 val split", line_of(HALF, "val_tokens")),
        log(SHORT_TAIL, "2,048 targets short: loader truncation", line_of(SHORT_TAIL, "val_tokens"),
            severity="warning"),
        log(old_log(val_tokens=None), "no val token count in the log", severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        backing = {id(lg) for lg in backing_logs(sub)}
        scored = [lg for lg in sub.logs if lg.final is not None]
        counted = [lg for lg in sub.logs if lg.val_tokens is not None]
        if scored and not counted:
            yield self.finding("no log prints a validation token count, so full coverage could not be checked",
                               severity="warning")
            return
        for lg in counted:
            for finding in self._one(lg):
                if finding.severity == "error" and id(lg) not in backing:
                    finding = self.finding(finding.message + "; this log backs no claimed score", finding.file,
                                           finding.line, severity="warning", evidence=finding.evidence)
                yield finding

    def _one(self, lg) -> Iterable[Finding]:
        hit = lg.val_tokens
        count = hit.value
        if lg.variant is None or lg.variant not in KNOWN_VAL_TOKENS:
            if not any(count in known for known in KNOWN_VAL_TOKENS.values()):
                yield self.finding(f"{lg.name}: {count:,} validation targets and the tokenizer could not be "
                                   "determined; coverage not checked", lg.name, hit.line, severity="warning",
                                   evidence=hit.text)
            return
        known = KNOWN_VAL_TOKENS[lg.variant]
        if count in known:
            return
        full = min(known)
        shown = " or ".join(f"{k:,}" for k in known)
        if count > max(known):
            yield self.finding(f"{lg.name}: {count:,} validation targets, more than the known {shown} for "
                               f"{lg.variant}; a different val export?", lg.name, hit.line, severity="warning",
                               evidence=hit.text)
        elif count >= full * (1 - TRUNCATION_SLACK):
            yield self.finding(f"{lg.name}: {count:,} of {full:,} {lg.variant} validation targets "
                               f"({full - count:,} short: whole-sequence truncation of the tail)", lg.name,
                               hit.line, severity="warning", evidence=hit.text)
        else:
            yield self.finding(f"{lg.name}: scores {count:,} of the {full:,} {lg.variant} validation targets "
                               f"({count / full:.1%}); the full split must be scored (tokenizer from "
                               f"{lg.variant_source})", lg.name, hit.line, evidence=hit.text)
