"""SUBMISSION-JSON: submission.json parses, names its author and score, and agrees with the logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.context import AuditContext
from harness.measure import as_number, backing_logs, matches_rounded, per_seed_claims, seed_scores
from harness.report import Finding
from rules._samples import line_of, new_log, old_log, submission_json, ternary_log
from rules.base import Citation, Rule, folder

REQUIRED = ("name", "author", "github_id", "val_bpb")
BAD_JSON = re.compile(r"line (\d+)")


def _labelled(label: str, bpb: float, log: str, why: str):
    return folder({"submission.json": submission_json(bpb), "train_seed1337.log": log, "train_gpt.py": "x = 1\n"},
                  f"final-score label {label}: {why}")


def _three_seeds() -> dict[str, str]:
    files = {"train_gpt.py": "x = 1\n"}
    scores = {"1337": 1.1192, "42": 1.1200, "2025": 1.1188}
    for seed, bpb in scores.items():
        files[f"train_seed{seed}.log"] = old_log("legal_ttt", bpb, 1.89, seed=int(seed), eval_ms=410268)
    seeds = {s: {"val_bpb": b, "artifact_bytes": 15815847 + 47642} for s, b in scores.items()}
    files["submission.json"] = submission_json(round(sum(scores.values()) / 3, 5), seeds)
    return files


_MISMATCH_LOG = old_log("final_int6_sliding_window", 1.1250, 1.90, eval_ms=74066)
_SEED_FILES = _three_seeds()
_SEED_FILES_BAD = dict(_SEED_FILES, **{"submission.json": submission_json(
    1.1193, {"1337": {"val_bpb": 1.1192, "artifact_bytes": 15863489}, "42": {"val_bpb": 1.1150},
             "2025": {"val_bpb": 1.1188}})})


class SubmissionJson(Rule):
    ID = "SUBMISSION-JSON"
    TITLE = "submission.json is well-formed and its numbers match the logs"
    CATEGORY = "hygiene"
    SEVERITY = "warning"
    READS = ("submission.json",)
    CITATION = Citation("README, Submission process",
                        "A submission.json file that includes your name, GitHub ID, val_bpb, and related metadata",
                        "README")
    RATIONALE = ("The leaderboard is built from submission.json, so its numbers must be the ones the logs show. "
                 "The schema is not enforced (merged records lack `author`, use `mean_val_bpb`, or keep "
                 "val_bpb in `val_loss`), so missing fields are warnings; every number present is cross-checked "
                 "against the logs at the precision the JSON wrote it with: the top-level val_bpb against the "
                 "mean of one final score per seed, per-seed val_bpb and artifact bytes against that seed's "
                 "log. A file that is not JSON is an error naming the line and column.")
    LEGAL = [
        _labelled("final_int8_zlib_roundtrip", 1.2243657, old_log(), "the baseline's roundtrip score"),
        _labelled("final_sliding_window", 1.1586, old_log("final_sliding_window", 1.1586, 1.956, eval_ms=370426),
                  "sliding score after a roundtrip line"),
        _labelled("final_sliding_window_eval", 1.1630,
                  old_log("final_sliding_window_eval", 1.1630, 1.963, eval_ms=72650), "MixedQuant label"),
        _labelled("final_int6_sliding_window", 1.1271,
                  old_log("final_int6_sliding_window", 1.1271, 1.903, eval_ms=69809), "int6 sliding label"),
        _labelled("legal_ttt", 1.1192, old_log("legal_ttt", 1.1192, 1.8898, eval_ms=410268), "score-first TTT"),
        _labelled("final_sliding", 1.1565, ternary_log(1.1565), "ternary family, `artifact:` size line"),
        _labelled("quantized_sliding_window", 1.0830,
                  new_log("quantized_sliding_window", 1.0830, 2.797, tokenizer="sp8192", code=78688, code_raw=None,
                          eval_ms=82837, total_eval_s=None), "2026-04 sliding label"),
        _labelled("quantized_ttt", 1.0808, new_log("quantized_ttt", 1.0808, 2.7917, tokenizer="sp8192",
                                                   code=16630, code_raw=None, eval_ms=366525, total_eval_s=None),
                  "sliding TTT, 04-09"),
        _labelled("quantized_ttt_lora", 1.0726, new_log("quantized_ttt_lora", 1.0726, 2.770, tokenizer="sp8192",
                                                        eval_ms=338200, total_eval_s=338.2, code=20),
                  "per-document LoRA TTT, 04-10"),
        _labelled("final_int8_ttt_lora", 1.1929, old_log("final_int8_ttt_lora", 1.1929, 2.0142, eval_ms=60184),
                  "03-17 LoRA TTT"),
        _labelled("quantized_ttt_phased", 1.0608, new_log(bpb=1.06083288, timestamps=True, code=20),
                  "phased TTT with epoch-timestamp prefixes"),
        folder({"submission.json": submission_json(1.1630),
                "train.log": old_log("final_sliding_window_eval", 1.2001, 1.99, eval_ms=72650)
                + old_log("final_sliding_window_eval", 1.1710, 1.97, eval_ms=72650)
                + old_log("final_sliding_window_eval", 1.1630, 1.963, eval_ms=72650),
                "train_gpt.py": "x = 1\n"},
               "three appended runs: the last run's score is the reported one"),
        folder({"submission.json": submission_json(1.0894),
                "train_seed42.log": new_log("final_int6_sliding_window", 1.08938974, 2.5067, tokenizer="sp4096",
                                            code_raw=None, code=24584, eval_ms=76195, total_eval_s=None,
                                            extra=(), seed=42)
                + "final_int6_ttt val_loss:3.07421378 val_bpb:1.33603200 eval_time:405410ms\n",
                "train_gpt.py": "x = 1\n"},
               "a failed final_int6_ttt line after the reported score is not the score (04-04)"),
        folder(_SEED_FILES, "three seeds, mean and per-seed values match"),
        folder({"submission.json": '{"author": "a", "github_id": "a", "name": "n", "mean_val_bpb": 1.2243657}',
                "train.log": old_log(), "train_gpt.py": "x = 1\n"}, "mean_val_bpb variant", severity="info"),
    ]
    ILLEGAL = [
        folder({"submission.json": '{"name": "x",\n "val_bpb": 1.2,\n}\n', "train.log": old_log()},
               "malformed JSON (trailing comma)", 3, file="submission.json", severity="error"),
        folder({"submission.json": submission_json(1.1193), "train_seed1337.log": _MISMATCH_LOG},
               "val_bpb differs from the log's final score", line_of(_MISMATCH_LOG, "final_int6_sliding_window_exact"),
               file="train_seed1337.log", severity="warning"),
        folder(_SEED_FILES_BAD, "seed 42's val_bpb is not what its log says",
               line_of(_SEED_FILES["train_seed42.log"], "legal_ttt_exact"), file="train_seed42.log",
               severity="warning"),
        folder({"submission.json": '{"val_bpb": 1.2243657}', "train.log": old_log()},
               "no name, author or github_id", severity="warning"),
        folder({"submission.json": submission_json(1.2243657, bytes_total=15000000), "train.log": old_log()},
               "bytes_total matches no log", line_of(old_log(), "Total submission size int8+zlib"),
               file="train.log", severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        name = sub.submission_json_name
        if name is None:
            return
        result = sub.submission_json
        if result.error:
            m = BAD_JSON.search(result.error)
            yield self.finding(result.error, name, int(m.group(1)) if m else 1, severity="error")
            return
        data = result.data or {}
        missing = [k for k in REQUIRED if k not in data]
        if "val_bpb" in missing and "mean_val_bpb" in data:
            missing.remove("val_bpb")
            yield self.finding(f"{name} gives `mean_val_bpb` instead of `val_bpb`", name, severity="info")
        if missing:
            yield self.finding(f"{name} lacks " + ", ".join(f"`{k}`" for k in missing), name)
        yield from self._cross_check(sub, name, data)

    def _cross_check(self, sub, name: str, data: dict) -> Iterable[Finding]:
        per_seed = per_seed_claims(data)
        seeds = seed_scores(sub)
        if not seeds:
            if sub.logs and (as_number(data.get("val_bpb")) is not None):
                yield self.finding("no final score line in any log, so val_bpb cannot be checked", name,
                                   severity="info")
            return
        # per seed: val_bpb and artifact bytes against that seed's log(s)
        for seed, row in per_seed.items():
            logs = [log for log in sub.logs if str(log.seed) == seed and log.final is not None]
            if not logs:
                yield self.finding(f"{name} reports seed {seed} but no log of that seed was found", name,
                                   severity="info")
                continue
            claimed = row.get("val_bpb")
            if claimed is not None and not any(matches_rounded(claimed, log.final.value) for log in logs):
                log = logs[-1]
                yield self.finding(f"seed {seed}: {name} says val_bpb {claimed}, its log's final score is "
                                   f"{log.final.value} ({log.final.label})", log.name, log.final.line,
                                   evidence=log.final.text)
            size = row.get("artifact_bytes", row.get("bytes_total"))
            totals = [log for log in logs if log.total_bytes is not None]
            if size is not None and totals and not any(_bytes_match(size, log) for log in totals):
                log = totals[-1]
                yield self.finding(f"seed {seed}: {name} says {int(size)} artifact bytes, its log prints "
                                   f"{log.total_bytes.value}", log.name, log.total_bytes.line,
                                   evidence=log.total_bytes.text)
        # top level: val_bpb against the mean over seeds (or the one backing log)
        claimed = as_number(data.get("val_bpb", data.get("mean_val_bpb")))
        if claimed is not None:
            values = [log.final.value for log in seeds.values()]
            mean = sum(values) / len(values)
            backing = backing_logs(sub)
            seed_claims = [r["val_bpb"] for r in per_seed.values() if "val_bpb" in r]
            ok = (matches_rounded(claimed, mean)
                  or any(log.final is not None and matches_rounded(claimed, log.final.value) for log in backing)
                  or bool(seed_claims and matches_rounded(claimed, sum(seed_claims) / len(seed_claims))))
            if not ok:
                last = list(seeds.values())[-1]
                detail = ", ".join(f"{k}: {v.final.value}" for k, v in seeds.items())
                yield self.finding(f"{name} says val_bpb {claimed}; the logs' final scores average "
                                   f"{mean:.8f} over {len(values)} run(s) ({detail})", last.name, last.final.line,
                                   evidence=last.final.text)
        size = as_number(data.get("bytes_total"))
        totals = [log for log in sub.logs if log.total_bytes is not None]
        if size is not None and totals and not any(_bytes_match(size, log) for log in totals):
            log = max(totals, key=lambda lg: lg.total_bytes.value)
            yield self.finding(f"{name} says bytes_total {int(size)}; no log prints that total (largest: "
                               f"{log.total_bytes.value})", log.name, log.total_bytes.line,
                               evidence=log.total_bytes.text)


def _bytes_match(claimed: float, log) -> bool:
    """Exact for byte counts; within the rounding of `artifact:15.92MB` lines (ternary family)."""
    if "rounded" in log.total_bytes_format:
        return abs(claimed - log.total_bytes.value) <= 5000
    return int(claimed) == log.total_bytes.value
