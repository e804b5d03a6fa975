"""CLAIMED-SCORE-IN-LOGS: the val_bpb submission.json claims is a score the logs print, not a better one."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage, checked, not_checked
from harness.measure import as_number, decimals, per_seed_claims
from harness.report import Finding
from rules._samples import line_of, old_log, submission_json
from rules.base import Citation, Rule, folder

# A claim within this many BPB of what a log prints is a rounding or bookkeeping slip (SUBMISSION-JSON
# reports it), not a score the logs contradict.
SLACK_BPB = 1e-4

_LOG = old_log("legal_ttt", 1.1437, 1.93, eval_ms=410_268)
_PPM = old_log("legal_ttt", 1.0736, 1.81, eval_ms=410_268, extra=("ppm_mix bytes=27048621 mix_bpb=0.820191",))
_SEEDS = {s: old_log("legal_ttt", b, 1.93, seed=s, eval_ms=410_268)
          for s, b in ((1337, 1.1437), (42, 1.1441), (2025, 1.1433))}


def _seed_files(top: float, per_seed: dict[str, float] | None = None) -> dict[str, str]:
    files = {f"train_seed{s}.log": text for s, text in _SEEDS.items()}
    seeds = {str(s): {"val_bpb": b} for s, b in (per_seed or {}).items()}
    files["submission.json"] = submission_json(top, seeds or None)
    files["train_gpt.py"] = "x = 1\n"
    return files


class ClaimedScoreInLogs(Rule):
    ID = "CLAIMED-SCORE-IN-LOGS"
    TITLE = "The claimed val_bpb is a score the logs print"
    CATEGORY = "eligibility"
    SEVERITY = "error"
    READS = ("submission.json", "logs")
    CITATION = Citation("README, Submission process",
                        "A submission.json file that includes your name, GitHub ID, val_bpb, and related metadata; "
                        "train log(s) ... that demonstrate the result", "README")
    RATIONALE = ("The leaderboard takes val_bpb from submission.json, and the logs are the evidence for it. A "
                 "claim lower than every bits-per-byte number any log prints (any label: a PPM mixture's "
                 "`mix_bpb=` counts) is a score nothing in the folder demonstrates, so the folder is not a "
                 "record: eligibility no, with the claimed and the printed numbers. Per seed, the seed's own "
                 f"logs are the evidence. Claims within {SLACK_BPB:g} BPB of a printed number, or worse than the "
                 "logs, are left to SUBMISSION-JSON (a warning).")
    LEGAL = [
        folder(_seed_files(1.1437, {1337: 1.1437, 42: 1.1441, 2025: 1.1433}), "claims are the logs' scores"),
        folder({"submission.json": submission_json(0.8202), "train.log": _PPM, "train_gpt.py": "x = 1\n"},
               "the claim is printed under another label (a PPM mixture)"),
        folder({"submission.json": submission_json(1.14375), "train.log": _LOG, "train_gpt.py": "x = 1\n"},
               "within the slack of the printed score"),
        folder({"submission.json": submission_json(1.2), "train.log": _LOG, "train_gpt.py": "x = 1\n"},
               "a claim worse than the logs is not contradicted"),
        folder({"submission.json": submission_json(1.4882), "train_gpt.py": "x = 1\n",
                "train.log": "step 700  ↳ BPB (EMA, stride=64): 0.9750  [random baseline 2.857]\n"},
               "the log prints lower numbers in its own format: the claim is not below them"),
    ]
    ILLEGAL = [
        folder({"submission.json": submission_json(0.3964), "train.log": _LOG, "train_gpt.py": "x = 1\n"},
               "every log says 1.1437, the JSON claims 0.3964", 6, file="submission.json"),
        folder(_seed_files(1.1437, {1337: 1.1437, 42: 1.1302, 2025: 1.1433}),
               "seed 42 claims 1.1302, its log's scores are no lower than 1.1441",
               line_of(_SEEDS[42], "legal_ttt_exact"), file="train_seed42.log"),
    ]

    def coverage(self, ctx: AuditContext) -> Coverage:
        sub = ctx.submission
        data = sub.submission_json.data if sub.submission_json_name else None
        if not isinstance(data, dict) or as_number(data.get("val_bpb", data.get("mean_val_bpb"))) is None:
            return not_checked("submission.json claims no val_bpb")
        if not any(lg.lowest_bpb is not None for lg in sub.logs):
            return not_checked("no log prints a bits-per-byte number")
        return checked(f"the claimed val_bpb against every bpb number of {len(sub.logs)} log(s)")

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        data = sub.submission_json.data if sub.submission_json_name else None
        if not isinstance(data, dict):
            return
        name = sub.submission_json_name
        printed = [lg for lg in sub.logs if lg.lowest_bpb is not None]
        claimed = as_number(data.get("val_bpb", data.get("mean_val_bpb")))
        if claimed is not None and printed:
            lowest = min(printed, key=lambda lg: lg.lowest_bpb.value)
            if _below(claimed, lowest.lowest_bpb.value):
                finals = ", ".join(f"{lg.name}: {lg.final.value}" for lg in printed if lg.final is not None)
                yield self.finding(f"{name} claims val_bpb {claimed}, but no log prints a score that low: the lowest "
                                   f"bpb number in any log is {lowest.lowest_bpb.value} ({lowest.name}, line "
                                   f"{lowest.lowest_bpb.line}); final scores: {finals or 'none'}. Not a record "
                                   "until the logs demonstrate the claim", name, _json_line(sub, "val_bpb"),
                                   evidence=lowest.lowest_bpb.text)
        for seed, row in per_seed_claims(data).items():
            mine = [lg for lg in printed if str(lg.seed) == seed]
            value = row.get("val_bpb")
            if value is None or not mine:
                continue
            lowest = min(mine, key=lambda lg: lg.lowest_bpb.value)
            if _below(value, lowest.lowest_bpb.value):
                where = lowest.final or lowest.lowest_bpb
                yield self.finding(f"seed {seed}: {name} claims val_bpb {value}, but the lowest bpb number its "
                                   f"log(s) print is {lowest.lowest_bpb.value} ({lowest.name}, line "
                                   f"{lowest.lowest_bpb.line})", lowest.name, where.line, evidence=where.text)


def _below(claimed: float, lowest: float) -> bool:
    step = 10.0 ** -decimals(claimed)
    return claimed < lowest - max(SLACK_BPB, step / 2)


def _json_line(sub, key: str) -> int:
    try:
        text = sub.read_bytes(sub.submission_json_name).decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - a line number is a convenience
        return 1
    for i, line in enumerate(text.splitlines(), 1):
        if f'"{key}"' in line:
            return i
    return 1
