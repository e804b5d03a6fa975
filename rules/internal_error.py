"""INTERNAL-ERROR: a detector that fails is reported, so its silence is never read as a pass."""

from __future__ import annotations

from rules.base import Citation, Rule


class InternalError(Rule):
    ID = "INTERNAL-ERROR"
    TITLE = "Every detector ran to the end on this submission"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "low"
    STATIC = False
    CITATION = Citation("golfaudit policy", "a verdict of legal is a claim about code that was analysed", "GUESS")
    RATIONALE = ("When a detector raises (or runs out of recursion depth on deeply nested code), the rule it "
                 "implements did not judge the submission. That is a low-confidence legality error naming the "
                 "detector, so the verdict is needs-review rather than a silent legal.")
