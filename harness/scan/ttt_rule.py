"""What the five TTT rules share: the analysis call, severity from the branch state, and example code.

Each rule module (rules/ttt_*.py, rules/prequant_ttt_on_val.py) picks the judgements of its kind from
harness.scan.ttt.analyse(sub) and words them; nothing is decided twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.report import Finding
from harness.scan.explain import packed_note, path_state, source_line, where
from harness.scan.ttt import Analysis, Judgement, analyse
from rules.base import Rule

TRACE_HINT = "run `audit.py trace` on this folder to record the order at run time"

# A tiny training script used by the rules' own examples (line 1 = first line).
PRELUDE = '''import glob
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    val_files = os.environ.get("VAL_FILES", "./data/fineweb_val_*.bin")
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    chunk_tokens = 32768


def load_shards(pattern):
    return torch.cat([torch.load(f) for f in sorted(glob.glob(pattern))])


def eval_val(model, tokens):
    loss_sum = torch.zeros(())
    with torch.no_grad():
        for i in range(0, tokens.numel() - 1, 2048):
            x = tokens[i:i + 2048]
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
    return loss_sum.item()

'''


def line_of(source: str, marker: str) -> int:
    """1-based line of the first line containing `marker` (for example line numbers)."""
    for i, text in enumerate(source.splitlines(), 1):
        if marker in text:
            return i
    raise ValueError(f"marker {marker!r} not in example")


def by_name_note(ev, review: bool = True) -> str:
    """Why a finding rests on a parameter's name rather than on data flow."""
    func = ev.chain[1][2] if len(ev.chain) > 1 else "the function"
    return (f"the parameter `{ev.by_name}` of {func}() is taken as validation data by its name, because nothing "
            f"in the folder binds it to the validation shards (library-style code, or the caller lives "
            f"elsewhere)" + (": review by hand" if review else ""))


class TTTRule(Rule):
    """Base of the TTT order rules: `judged(sub)` yields (judgement, severity-or-None, note)."""

    KINDS: tuple[str, ...] = ()

    def analysis(self, sub) -> Analysis:
        return analyse(sub)

    def judged(self, sub) -> Iterable[tuple[Judgement, str, str]]:
        a = self.analysis(sub)
        for j in a.judgements:
            if j.kind not in self.KINDS:
                continue
            state = path_state(sub, j.conds)
            yield j, ("error" if state.runs else "warning"), state.note

    def located(self, j: Judgement, message: str, severity, confidence, note: str, sub) -> Finding:
        a = self.analysis(sub)
        ev = j.grad or j.score
        evidence = "\n".join(x for x in (source_line(a.texts, j.grad), source_line(a.texts, j.score),
                                          source_line(a.texts, j.save)) if x)
        if note:
            message = f"{message}; {note}"
        if j.grad is not None and j.grad.by_name:
            message += "; " + by_name_note(j.grad, review=severity != "info")
            if severity == "error":
                confidence = "low"
        message += packed_note(ev, a.packed)
        return self.finding(message, ev.unit if ev else None, ev.line if ev else None, severity=severity,
                            confidence=confidence, evidence=evidence)


__all__ = ["PRELUDE", "TRACE_HINT", "TTTRule", "line_of", "where"]
