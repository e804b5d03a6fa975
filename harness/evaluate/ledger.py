"""Which target positions an evaluation has scored: the guard behind score-first evaluation.

The sliding-window scorer marks each scored span; test-time training asks before every batch and gets
`TrainBeforeScoreError` when it would train on a position whose score is not yet fixed.
"""

from __future__ import annotations


class TrainBeforeScoreError(RuntimeError):
    """A training step would use a token whose score was not yet fixed (illegal TTT order)."""


class ScoreLedger:
    """Positions [0, scored_hi) have been scored, in order, each exactly once — or, with `allow_rescore`
    (the Style A layouts of older records), at least once, the repeats counted in `rescored`."""

    def __init__(self, n_targets: int, allow_rescore: bool = False, start: int = 0):
        self.n = n_targets
        self.start = start          # a rank's ledger starts at its share's first scored position
        self.scored_hi = start
        self.allow_rescore = allow_rescore
        self.rescored = 0

    def mark_scored(self, a: int, b: int) -> None:
        if a == self.scored_hi or (self.allow_rescore and a < self.scored_hi):
            self.rescored += max(0, min(b, self.scored_hi) - a)
            self.scored_hi = max(self.scored_hi, b)
            return
        raise RuntimeError(f"scoring positions [{a}, {b}) but positions before {self.scored_hi} "
                           f"are the only ones scored: a gap or a double count")

    def check_train(self, a: int, b: int) -> None:
        """Training on inputs t[a:b] with targets t[a+1:b+1] uses positions [a, b)."""
        if b > self.scored_hi:
            raise TrainBeforeScoreError(f"training on positions [{a}, {b}) but only [0, {self.scored_hi}) "
                                        f"have been scored")

    def require_complete(self) -> None:
        if self.scored_hi != self.n:
            raise RuntimeError(f"scored {self.scored_hi} of {self.n} positions")
