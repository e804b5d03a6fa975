"""Load the record to beat (`--sota`): a records folder (its logs) or a JSON file with per-seed scores."""

from __future__ import annotations

import json
from pathlib import Path

from harness.options import SotaReference


def load_sota(path: Path) -> SotaReference:
    """Accepts a records folder, a submission.json, or {"name", "val_bpb": [...], "val_loss": [...]}."""
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_dir():
        from harness.submission import Submission

        sub = Submission(path, str(path))
        bpbs = tuple(float(log.final.value) for log in sub.logs if log.final is not None)
        losses = tuple(float(log.final_loss) for log in sub.logs if log.final_loss is not None)
        if not bpbs:
            raise ValueError(f"{path}: no final val_bpb found in its logs")
        tok = None
        for log in sub.logs:
            tok = log.hyperparams.get("tokenizer_path") or tok
        return SotaReference(path.name, bpbs, losses if len(losses) == len(bpbs) else (), tok)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    from harness.measure import per_seed_claims

    seeds = per_seed_claims(data)
    bpbs: tuple[float, ...]
    if seeds:
        bpbs = tuple(float(r["val_bpb"]) for r in seeds.values() if "val_bpb" in r)
        losses = tuple(float(r["val_loss"]) for r in seeds.values() if "val_loss" in r)
    else:
        raw = data.get("val_bpb")
        bpbs = tuple(float(x) for x in raw) if isinstance(raw, list) else ((float(raw),) if raw is not None else ())
        raw_l = data.get("val_loss")
        losses = tuple(float(x) for x in raw_l) if isinstance(raw_l, list) else ()
    if not bpbs:
        raise ValueError(f"{path}: no per-seed val_bpb values")
    return SotaReference(str(data.get("name", path.stem)), bpbs, losses if len(losses) == len(bpbs) else (),
                         data.get("tokenizer"))
