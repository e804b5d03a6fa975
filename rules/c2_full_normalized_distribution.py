"""C2-FULL-NORMALIZED-DISTRIBUTION: the scored distribution sums to one over the whole vocabulary (`audit.py eval`)."""

from __future__ import annotations

from rules.base import Citation, Rule


class FullNormalizedDistribution(Rule):
    ID = "C2-FULL-NORMALIZED-DISTRIBUTION"
    TITLE = "Each scored distribution is one normalised distribution over the whole vocabulary"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("eval",)
    STATIC = False
    CITATION = Citation("Issue #1017 (condition C2)", "one distribution over the whole alphabet that sums to 1, "
                        "independent of the realised token", "#1017",
                        "https://github.com/openai/parameter-golf/issues/1017")
    RATIONALE = ("A score is a log-probability only if the distribution it comes from sums to one over every "
                 "token and does not depend on the token being scored. `audit.py eval` measures both on the "
                 "submission's own logits (|Σp−1| and the dependence on the target); statically the shape of a "
                 "renormalisation cannot be judged, so only the runtime check emits this rule.")
