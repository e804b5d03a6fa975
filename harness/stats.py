"""Record-significance statistics: one-sided Welch t-test against the SOTA's per-seed scores.

README bar: beat SOTA by >= 0.005 nats at p < 0.01. Maintainers' later practice: p < 0.25 (#1902).
Scores are compared in nats: per token (val_loss) when both sides use the same tokenizer, else per byte
(val_bpb * ln 2), since nats per token of different tokenizers are not comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

README_MARGIN_NATS = 0.005
README_P = 0.01
PRACTICE_P = 0.25


@dataclass(frozen=True)
class Significance:
    unit: str               # "nats/token" | "nats/byte"
    mean_new: float
    mean_sota: float
    improvement: float      # sota - new, in `unit`
    p_margin: float         # H1: new < sota - 0.005 (README bar)
    p_any: float            # H1: new < sota (practice bar)
    n_new: int
    n_sota: int

    @property
    def meets_readme(self) -> bool:
        return self.p_margin < README_P

    @property
    def meets_practice(self) -> bool:
        return self.p_any < PRACTICE_P


def welch_less(new: Sequence[float], ref: Sequence[float], shift: float = 0.0) -> float:
    """p of a one-sided Welch t-test that mean(new) < mean(ref) - shift (scipy, imported lazily)."""
    from scipy.stats import ttest_ind

    if len(new) < 2 or len(ref) < 2:
        return math.nan
    shifted = [x - shift for x in ref]
    result = ttest_ind(list(new), shifted, equal_var=False, alternative="less")
    p = float(result.pvalue)
    if math.isnan(p):
        # zero variance on both sides: the answer is certain either way
        return 0.0 if sum(new) / len(new) < sum(shifted) / len(shifted) else 1.0
    return p


def significance(new: Sequence[float], ref: Sequence[float], unit: str) -> Significance:
    """Both tests of SIG-0.005-NATS on scores already expressed in `unit` (nats)."""
    mean_new = sum(new) / len(new)
    mean_ref = sum(ref) / len(ref)
    return Significance(unit, mean_new, mean_ref, mean_ref - mean_new,
                        welch_less(new, ref, README_MARGIN_NATS), welch_less(new, ref), len(new), len(ref))


def bpb_to_nats_per_byte(bpb: float) -> float:
    return bpb * math.log(2)
