"""What a folder claims, and what golfaudit measured itself, each value tagged with its source.

`claims` come from submission.json; `measured` values come from the logs (`"source": "log"`), from the
files on disk (`"file"`) or from our own re-run (`"reproduced"`, added by the run/eval paths).
"""

from __future__ import annotations

from typing import Any

from harness.codebytes import CodeBytes, code_bytes_report, seed_sizes
from harness.report import Measured
from harness.submission import Submission

CLAIM_KEYS = ("val_bpb", "val_loss", "bytes_total", "bytes_code", "artifact_bytes_max", "artifact_bytes_mean",
              "train_time_s_mean", "eval_time_s_mean", "wallclock_seconds", "mean_val_bpb")


def as_number(value: Any) -> float | int | None:
    """A JSON value as a number: ints and floats as they are, numeric strings parsed, anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def where_line(log: Any) -> int:
    hit = log.total_bytes or log.model_bytes
    return hit.line if hit is not None else 0


def per_seed_claims(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-seed entries from `seed_results` or the dict form of `seeds` (EVAL_INTERNALS §5)."""
    out: dict[str, dict[str, Any]] = {}
    for key in ("seed_results", "seeds"):
        block = data.get(key)
        if not isinstance(block, dict):
            continue
        for seed, entry in block.items():
            if not isinstance(entry, dict):
                continue
            row = out.setdefault(str(seed), {})
            for name in ("val_bpb", "val_loss", "artifact_bytes", "bytes_total", "train_time_s", "eval_time_s",
                         "train_time_ms", "steps"):
                value = as_number(entry.get(name))
                if value is not None:
                    row.setdefault(name, value)
    return out


def claims_of(sub: Submission) -> dict[str, Any]:
    data = sub.submission_json.data
    if not data:
        return {}
    claims: dict[str, Any] = {}
    for key in CLAIM_KEYS:
        value = as_number(data.get(key))
        if value is not None:
            claims[key] = value
    seeds = per_seed_claims(data)
    if seeds:
        claims["seeds"] = seeds
    elif isinstance(data.get("seeds"), list):
        claims["seed_list"] = [s for s in data["seeds"] if isinstance(s, (int, str))]
    return claims


def measured_of(sub: Submission, cb: CodeBytes | None) -> dict[str, Any]:
    """What the logs and the files say, per seed and overall; `cb` is the shipped code's size."""
    measured: dict[str, Any] = {}
    seeds: dict[str, dict[str, Any]] = {}
    sizes = {id(s.log): s for s in seed_sizes(sub, cb)}
    backing = {id(log) for log in backing_logs(sub)}
    for log in sub.logs:
        if log.final is None and log.total_bytes is None and log.train_time_ms is None:
            continue
        key = str(log.seed) if log.seed is not None else log.name
        if key in seeds:
            key = f"{key} ({log.name})"
        row: dict[str, Measured] = {}
        where = f"{log.name}:{{}}"
        if log.final is not None:
            row["val_bpb"] = Measured(log.final.value, "log", where.format(log.final.line) + f" {log.final.label}")
            if log.final_loss is not None:
                row["val_loss"] = Measured(log.final_loss, "log", where.format(log.final.line))
        if log.total_bytes is not None:
            row["total_bytes"] = Measured(log.total_bytes.value, "log", where.format(log.total_bytes.line))
        if log.code_bytes is not None:
            row["code_bytes"] = Measured(log.code_bytes.value, "log", where.format(log.code_bytes.line))
        if log.model_bytes is not None:
            row["model_bytes"] = Measured(log.model_bytes.value, "log", where.format(log.model_bytes.line))
        if log.train_time_ms is not None:
            row["train_time_s"] = Measured(log.train_time_ms.value / 1000, "log",
                                           where.format(log.train_time_ms.line))
        if log.stop_step is not None:
            row["stop_step"] = Measured(log.stop_step, "log", where.format(log.train_time_ms.line))
        if log.total_eval_time_s is not None:
            row["eval_time_s"] = Measured(log.total_eval_time_s.value, "log",
                                          where.format(log.total_eval_time_s.line))
        elif log.eval_time_ms is not None and log.final is not None:
            row["eval_time_s"] = Measured(log.eval_time_ms / 1000, "log",
                                          where.format(log.final.line) + " (final score line only)")
        if log.val_tokens is not None:
            row["val_tokens"] = Measured(log.val_tokens.value, "log", where.format(log.val_tokens.line))
        if log.train_shards is not None:
            row["train_shards"] = Measured(log.train_shards.value, "log", where.format(log.train_shards.line))
        if log.final is not None:
            row["score_label"] = log.final.label
            row["backs_claim"] = id(log) in backing
        size = sizes.get(id(log))
        if size is not None:
            if size.model is not None:
                row["model_bytes"] = Measured(size.model, "log", where.format(where_line(log)) + " total - code")
                row["code_bytes_counted"] = Measured(size.code_counted, "computed" if cb else "log",
                                                     f"binding: {cb.binding}" if cb else "as logged")
                row["total_bytes_counted"] = Measured(size.model + size.code_counted, "computed",
                                                      "model bytes (log) + code bytes that count")
        seeds[key] = row
    if seeds:
        measured["seeds"] = seeds
        bpbs = [r["val_bpb"].value for r in seeds.values() if "val_bpb" in r]
        if bpbs:
            measured["val_bpb_mean"] = Measured(round(sum(bpbs) / len(bpbs), 8), "log",
                                                f"mean of {len(bpbs)} logs' final scores")
        totals = [r["total_bytes"].value for r in seeds.values() if "total_bytes" in r]
        if totals:
            measured["total_bytes_max"] = Measured(max(totals), "log", f"max over {len(totals)} logs")
        counted = [r["total_bytes_counted"].value for r in seeds.values() if "total_bytes_counted" in r]
        if counted:
            measured["total_bytes_counted_max"] = Measured(max(counted), "computed",
                                                           "max over logs of model (log) + counted code")
    code = code_bytes_report(cb)
    if code:
        measured["code"] = code
    return measured


# -- which logs back the claims ---------------------------------------------------------------------

def decimals(value: float) -> int:
    """Decimal places a JSON number was written with (1.1929 → 4); at most 10."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        return 10
    return min(len(text.split(".")[1]) if "." in text else 0, 10)


def matches_rounded(claimed: float, measured: float) -> bool:
    """True when `measured` rounds to `claimed` at the precision `claimed` was written with."""
    step = 10.0 ** -decimals(claimed)
    return abs(measured - claimed) <= step / 2 + 1e-12


def claimed_scores(data: dict[str, Any] | None) -> list[float]:
    """Every val_bpb the JSON states: top level (or mean_val_bpb) and per seed."""
    if not data:
        return []
    out = [v for v in (as_number(data.get("val_bpb")), as_number(data.get("mean_val_bpb"))) if v is not None]
    out += [row["val_bpb"] for row in per_seed_claims(data).values() if "val_bpb" in row]
    return out


def backing_logs(sub: Submission) -> list[Any]:
    """Logs whose final score is one the submission claims; all scored logs when none (or no JSON) matches.

    Folders often keep extra runs (reruns, 40-minute experiments, eval-only passes): a budget broken by a
    log that backs no claimed score is worth a warning, one broken by a backing log is an error."""
    scored = [log for log in sub.logs if log.final is not None]
    claims = claimed_scores(sub.submission_json.data)
    backing = [log for log in scored if any(matches_rounded(c, log.final.value) for c in claims)]
    return backing or [log for log in sub.logs if log.final is not None or log.train_time_ms is not None]


def seed_scores(sub: Submission) -> dict[str, Any]:
    """One scored log per seed (the backing one when there are several): seed key → ParsedLog."""
    backing = {id(log) for log in backing_logs(sub)}
    out: dict[str, Any] = {}
    for log in sub.logs:
        if log.final is None:
            continue
        key = str(log.seed) if log.seed is not None else log.name
        if key not in out or (id(log) in backing and id(out[key]) not in backing):
            out[key] = log
    return out
