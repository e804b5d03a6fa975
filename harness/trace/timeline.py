"""Read a traced run's events: which read-out is the reported score, and per validation position when it
was first scored, when the reported score took it, and when it was first trained on."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_BPB = re.compile(r"val_bpb[:=\s]+([-+0-9.eE]+)")
_LOSS = re.compile(r"val_loss[:=\s]+([-+0-9.eE]+)")


def _num(rx: re.Pattern, text: str) -> float | None:
    m = rx.search(text)
    if not m:
        return None
    try:
        return float(m.group(1))
    except ValueError:
        return None


@dataclass
class Timeline:
    events: list[dict[str, Any]]
    reported_line: str | None = None
    reported_bpb: float | None = None
    reported_reads: list[int] = field(default_factory=list)
    matched_by: str = ""                                  # "val_loss value" or "last read-out before the line"
    reported_score: dict[int, int] = field(default_factory=dict)   # position -> loss event in the reported score
    first_scored: dict[int, int] = field(default_factory=dict)     # position -> first loss event in any read-out
    first_trained: dict[int, int] = field(default_factory=dict)    # position -> first train event
    val_tokens: int = 0
    steps_after_read: int = 0     # optimizer steps between the matched read-out and the printed line

    def trained_before_reported(self) -> list[int]:
        """Reported positions trained on before the reported score of them was taken (TTT-SCORE-FIRST)."""
        return sorted(p for p, e in self.reported_score.items() if self.first_trained.get(p, e) < e)

    def score_first_violations(self) -> list[int]:
        """Reported positions trained on before any score of them was taken."""
        return sorted(p for p, e in self.reported_score.items()
                      if p in self.first_trained and self.first_trained[p] < e
                      and not self.first_scored.get(p, e) < self.first_trained[p])

    def rescore_violations(self) -> list[int]:
        """Reported positions scored, then trained on, then scored again for the reported number."""
        return sorted(p for p, e in self.reported_score.items()
                      if p in self.first_trained and self.first_scored.get(p, e) < self.first_trained[p] < e)

    def trained_after_score(self) -> list[int]:
        return sorted(p for p, e in self.reported_score.items() if p in self.first_trained)


def _expand(tag: dict[str, Any], events: list[dict[str, Any]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for key, pos in tag.items():
        e = int(key)
        out[e] = events[e].get("positions", []) if pos == "all" else pos
    return out


def _earliest(reads: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[int, int]:
    """Position -> the first loss event of it in these read-outs."""
    out: dict[int, int] = {}
    for r in reads:
        for ev, pos in _expand(r["events"], events).items():
            for p in pos:
                if p not in out or ev < out[p]:
                    out[p] = ev
    return out


def build(events: list[dict[str, Any]]) -> Timeline:
    tl = Timeline(events=events)
    # tokens the val loader returned (after --tokens); else those of the val shards read directly
    tl.val_tokens = (sum(e.get("n", 0) for e in events if e["kind"] == "val")
                     or sum(e.get("n", 0) for e in events if e["kind"] == "val_shard"))
    prints = [e for e in events if e["kind"] == "print" and _num(_BPB, e["text"]) is not None]
    reads = [e for e in events if e["kind"] == "read"]
    tl.first_scored = _earliest(reads, events)
    for t in (e for e in events if e["kind"] == "train"):
        for pos in _expand(t["events"], events).values():
            for p in pos:
                tl.first_trained.setdefault(p, t["i"])
    if not prints:
        return tl
    line = prints[-1]
    tl.reported_line, tl.reported_bpb = line["text"], _num(_BPB, line["text"])
    before = [r for r in reads if r["i"] < line["i"]]
    want = _num(_LOSS, line["text"])
    chosen = []
    if want is not None:
        m = _LOSS.search(line["text"])
        decimals = len(m.group(1).partition(".")[2]) if m else 8
        tol = 0.5 * 10 ** -decimals + 1e-9 * abs(want)
        chosen = [r for r in before if isinstance(r.get("value"), (int, float)) and abs(r["value"] - want) <= tol]
        if chosen:
            chosen, tl.matched_by = [chosen[-1]], "val_loss value"
    if not chosen and before:
        chosen, tl.matched_by = [before[-1]], "last read-out before the line"
    tl.reported_reads = [r["i"] for r in chosen]
    if chosen:
        tl.steps_after_read = sum(1 for e in events if e["kind"] == "step" and chosen[-1]["i"] < e["i"] < line["i"])
    tl.reported_score = _earliest(chosen, events)
    return tl
