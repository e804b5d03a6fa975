"""When a sandboxed run must stop: one wall-clock budget, or a phase-aware one that reads the console.

Phase-aware (`audit.py run`): until the console shows the end of training (a `stopping_early` line, the
last step line `step:N/N`, a `Serialized model` / `Total submission size` line, or a final score line: the
lines harness.logs reads), the run may last `train_s` + `tolerance_s`; once training has ended at T, it
may last until T + `eval_s` + `tolerance_s`. Times count from the payload's start: the sandbox's own
start-up is not the submission's time. A run that never shows the end of training is stopped at the
training budget instead of being left to use the evaluation budget too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["train", "eval", "total"]
TRAIN_END_KINDS = ("stop", "serialize", "final")


@dataclass(frozen=True)
class PhaseBudget:
    train_s: float
    eval_s: float
    tolerance_s: float = 1.0


def default_grace(gpus: int) -> float:
    """SIGTERM to SIGKILL at a budget: 5 s on the CPU (a CPU payload has nothing to flush that takes longer),
    30 s with GPUs (torchrun tears its ranks and NCCL down on SIGTERM)."""
    return 5.0 if gpus == 0 else 30.0


def train_end(markers: list[tuple[float, str, str]]) -> tuple[float, str] | None:
    """(seconds, line) of the first console line that shows training has ended, or None."""
    return next(((t, line) for t, kind, line in markers if kind in TRAIN_END_KINDS), None)


def deadline(total_s: float, phases: PhaseBudget | None, ended_at: float | None) -> tuple[float, Phase]:
    """(seconds from the payload's start at which the run is stopped, the phase that budget belongs to)."""
    if phases is None:
        return total_s, "total"
    if ended_at is None:
        return min(total_s, phases.train_s + phases.tolerance_s), "train"
    return min(total_s, ended_at + phases.eval_s + phases.tolerance_s), "eval"
