"""The record to beat (`--sota`): loaded from a records folder (its logs) or a JSON file with per-seed
scores, or found in the clone that holds the audited folder: the best legal record of the same track whose
eligibility is not ruled out, dated before the folder (the same frontier `audit.py sweep` computes)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.display import git_root
from harness.measure import per_seed_claims
from harness.options import SotaReference
from harness.report import SubmissionReport
from harness.submission import Submission


def load_sota(path: Path) -> SotaReference:
    """Accepts a records folder, a submission.json, or {"name", "val_bpb": [...], "val_loss": [...]}."""
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_dir():
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


@dataclass(frozen=True)
class PreviousRecord:
    """The record a folder must beat, found in its own clone: its folder and the scores loaded from it."""

    folder: Path
    reference: SotaReference
    before: dt.date


def clone_track(folder: Path) -> Path | None:
    """`records/<track>` of the parameter-golf clone holding `folder` (`<clone>/records/<track>/<name>`)."""
    resolved = folder.resolve()
    if resolved.is_file() or len(resolved.parts) < 3 or resolved.parent.parent.name != "records":
        return None
    root = git_root(resolved)
    if root is None or resolved.parent.parent != root / "records":
        return None
    return resolved.parent


def folder_date(folder: Path) -> dt.date | None:
    try:
        return Submission(folder, str(folder)).date
    except Exception:  # noqa: BLE001 - an unreadable folder has no date; it is audited (and reported) anyway
        return None


def contenders(reports: Sequence[SubmissionReport], folders: Sequence[Path]) -> list[tuple[dt.date, float, Path]]:
    """(date, mean val_bpb, folder) of each audited record that can stand as the one to beat: legal, its
    eligibility not ruled out, dated, with a measured score."""
    out = []
    for report, folder in zip(reports, folders):
        score = report.measured.get("val_bpb_mean")
        value = score.get("value") if isinstance(score, dict) else score
        date = folder_date(folder)
        if (report.verdict == "legal" and report.eligible is not False and date is not None
                and isinstance(value, (int, float))):
            out.append((date, float(value), folder))
    return out


def previous_record(folder: Path, pool: list[tuple[dt.date, float, Path]]) -> PreviousRecord | None:
    """The best (lowest val_bpb) contender of `pool` dated strictly before `folder`, or None."""
    date = folder_date(folder)
    if date is None:
        return None
    earlier = [c for c in pool if c[0] < date and c[2].resolve() != folder.resolve()]
    if not earlier:
        return None
    _, _, best = min(earlier, key=lambda c: (c[1], c[0]))
    try:
        return PreviousRecord(best, load_sota(best), date)
    except ValueError:
        return None
