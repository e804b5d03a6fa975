"""TRAIN-VAL-DISJOINT: the training shards were not built from the validation documents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from harness.context import AuditContext
from harness.measure import backing_logs
from harness.report import Finding
from rules._samples import line_of, new_log
from rules.base import Citation, Rule, log

LEAKY_SHARDS = 1499                      # local prepare_caseops_data.py --val-docs=10000, 10M-token shards
CASEOPS_10K_VAL = (9_500_000, 9_800_000)  # ~9.66M targets: a 10k-document CaseOps val split
RULING = dt.date(2026, 5, 2)

LEAKY = new_log(code=20, shards=1499, data_root="/root/caseops_data/datasets")
SMALL_VAL = new_log(code=20, val_tokens=9_662_464)
AFTER = {"rules_as_of": RULING}


class TrainValDisjoint(Rule):
    ID = "TRAIN-VAL-DISJOINT"
    TITLE = "Training data does not contain the validation documents"
    CATEGORY = "legality"
    SEVERITY = "error"
    READS = ("logs",)
    CONFIDENCE = "medium"
    EFFECTIVE_FROM = RULING
    CITATION = Citation("cocohearts on #2146",
                        "PR #2130 remains excluded due the train/validation document overlap fingerprint.",
                        "MAINT")
    RATIONALE = ("Rebuilding the CaseOps data locally with the script's default `--val-docs 10000` puts "
                 "validation documents 10,000-49,999 into training (issue #2127). Its fingerprints in the log: "
                 "`train_shards: 1499` (10M-token shards; the canonical HF data has 80) and a CaseOps val split "
                 "of ~9.66M targets instead of 47,851,520. A doubled `datasets/datasets` path alone is also the "
                 "canonical HF snapshot layout, so it is only reported as information. Enforced from the "
                 "2026-05-02 leaderboard ruling; earlier submissions get a warning.")
    LEGAL = [
        log(new_log(code=20, data_root="/root/caseops_data/datasets"),
            "canonical HF CaseOps data: 80 shards, 47,851,520 targets (doubled path is the HF layout)"),
        log(new_log(code=20, tokenizer="sp8192", shards=128), "plain sp8192 with 128 shards"),
    ]
    ILLEGAL = [
        log(LEAKY, "train_shards: 1499", line_of(LEAKY, "train_shards"), options=AFTER),
        log(SMALL_VAL, "CaseOps val split of 9.66M targets", line_of(SMALL_VAL, "val_tokens"), options=AFTER),
        log(LEAKY, "before the ruling: a warning", line_of(LEAKY, "train_shards"), severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        backing = {id(lg) for lg in backing_logs(sub)}
        for lg in sub.logs:
            severity = "error" if id(lg) in backing else "warning"
            note = "" if id(lg) in backing else "; this log backs no claimed score"
            shards = lg.train_shards
            if shards is not None and shards.value == LEAKY_SHARDS:
                yield self.finding(f"{lg.name}: `train_shards: {LEAKY_SHARDS}` is the fingerprint of CaseOps data "
                                   "rebuilt locally with --val-docs 10000, whose training shards hold val "
                                   f"documents 10,000-49,999{note}", lg.name, shards.line, severity=severity,
                                   evidence=shards.text)
            vt = lg.val_tokens
            if (vt is not None and lg.variant == "sp8192-caseops"
                    and CASEOPS_10K_VAL[0] <= vt.value <= CASEOPS_10K_VAL[1]):
                yield self.finding(f"{lg.name}: a CaseOps val split of {vt.value:,} targets (~10k documents) "
                                   "means the other 40k val documents went to training data"
                                   f"{note}", lg.name, vt.line, severity=severity, evidence=vt.text)
            doubled = [p for p in lg.data_paths if "datasets/datasets" in p.text]
            if doubled and shards is not None and shards.value == LEAKY_SHARDS:
                yield self.finding(f"{lg.name}: doubled `datasets/datasets` path ({doubled[0].text})", lg.name,
                                   doubled[0].line, severity="info", evidence=doubled[0].text)
