"""SEEDS-3-SAME-CONFIG: a record reports >= 3 independent seeds of one configuration."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from harness.context import AuditContext
from harness.measure import per_seed_claims, seed_scores
from harness.report import Finding
from rules._samples import new_log, old_log, submission_json
from rules.base import Citation, Rule, folder

# hyperparameters that legitimately differ between the seeds' runs
PER_RUN_KEY = re.compile(r"seed|run_id|log|dir|path|file|rank|world|time|date|artifact|output", re.I)
MIN_SEEDS = 3


def _seeds(make, n: int = 3, **kw) -> dict[str, str]:
    files = {"train_gpt.py": "x = 1\n"}
    for i, seed in enumerate((1337, 42, 2025)[:n]):
        files[f"train_seed{seed}.log"] = make(seed=seed, bpb=1.12 + i * 0.0004, **kw)
    return files


def _other_config() -> dict[str, str]:
    files = _seeds(new_log, code=20)
    files["train_seed2025.log"] = files["train_seed2025.log"].replace("  gptq_reserve_seconds: 8.0",
                                                                      "  gptq_reserve_seconds: 12.0")
    return files


class Seeds3SameConfig(Rule):
    ID = "SEEDS-3-SAME-CONFIG"
    TITLE = "At least 3 seeds of the same configuration"
    CATEGORY = "eligibility"
    SEVERITY = "error"
    READS = ("logs", "submission.json")
    EFFECTIVE_FROM = dt.date(2026, 4, 29)
    CITATION = Citation("cocohearts on #2124",
                        "A leaderboard row needs a 3-seed mean from the same submitted configuration", "MAINT")
    RATIONALE = ("A record must show its gain is not one lucky seed: README asks for enough runs to show "
                 "p < 0.01, usually 3. golfaudit counts distinct seeds with a final score in the logs, and "
                 "compares the seeds' hyperparameter dumps (ignoring per-run keys such as seed, run id and "
                 "paths) and logged code sizes. Fewer than 3 seeds is an error from the 2026-04-29 leaderboard "
                 "cleanup (#1902 excluded single-seed rows), a warning before; differing configs warn.")
    LEGAL = [
        folder(_seeds(old_log, eval_ms=1401), "three seed logs, 2026-03 format"),
        folder(_seeds(new_log, code=20), "three seed logs with identical hyperparameter dumps"),
    ]
    ILLEGAL = [
        folder({"train_gpt.py": "x = 1\n", "train.log": old_log()}, "a single run",
               options={"rules_as_of": dt.date(2026, 4, 29)}),
        folder(_seeds(old_log, n=2), "two seeds", options={"rules_as_of": dt.date(2026, 4, 29)}),
        folder(dict(_seeds(old_log, n=1), **{"submission.json": submission_json(1.12, seeds=[1337, 42, 2025])}),
               "claims three seeds, ships one log", severity="warning"),
        folder(_other_config(), "seed 2025 ran another configuration", 4, file="train_seed2025.log",
               severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        if sub.track != "10min-16mb":
            return
        logs = seed_scores(sub)
        numeric = {k: v for k, v in logs.items() if k.isdigit()}
        count = max(len(numeric), 1 if logs else 0)
        data = sub.submission_json.data or {}
        claimed = set(per_seed_claims(data))
        if isinstance(data.get("seeds"), list):
            claimed |= {str(s) for s in data["seeds"]}
        if count < MIN_SEEDS:
            shown = ", ".join(logs) or "none"
            yield self.finding(f"{count} seed(s) with a final score in the logs ({shown}); a record needs "
                               f"{MIN_SEEDS} runs of the same configuration")
        missing = sorted(claimed - set(logs)) if claimed else []
        if missing and len(claimed) >= MIN_SEEDS:
            yield self.finding(f"submission.json lists seed(s) {', '.join(missing)} with no scored log",
                               sub.submission_json_name, severity="warning")
        yield from self._same_config(list(logs.values()))

    def _same_config(self, logs) -> Iterable[Finding]:
        dumps = [lg for lg in logs if lg.hyperparams]
        if len(dumps) >= 2:
            ref = dumps[0]
            for lg in dumps[1:]:
                diff = sorted(k for k in set(ref.hyperparams) | set(lg.hyperparams)
                              if not PER_RUN_KEY.search(k) and ref.hyperparams.get(k) != lg.hyperparams.get(k))
                if diff:
                    shown = "; ".join(f"{k}: {ref.hyperparams.get(k)} vs {lg.hyperparams.get(k)}" for k in diff[:6])
                    line = _hparam_line(lg, diff[0])
                    yield self.finding(f"{lg.name} ran a different configuration than {ref.name} ({shown})",
                                       lg.name, line, severity="warning")
        sizes = {lg.code_bytes.value: lg.name for lg in logs if lg.code_bytes is not None}
        if len(sizes) > 1:
            shown = ", ".join(f"{name}: {size:,}" for size, name in sorted(sizes.items()))
            yield self.finding(f"the seeds' logs count different code sizes ({shown}): not the same script",
                               severity="warning")


def _hparam_line(lg, key: str) -> int | None:
    if lg.hyperparams_line is None:
        return None
    keys = list(lg.hyperparams)
    return lg.hyperparams_line + 1 + keys.index(key) if key in keys else lg.hyperparams_line
