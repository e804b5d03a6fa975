"""INLINE-IGNORE: a `# golfaudit: ignore[...]` comment in the submission's source is noted, never obeyed."""

from __future__ import annotations

from rules.base import Citation, Rule


class InlineIgnore(Rule):
    ID = "INLINE-IGNORE"
    TITLE = "In-source ignore comments annotate a finding, they do not suppress it"
    CATEGORY = "hygiene"
    SEVERITY = "info"
    STATIC = False
    CITATION = Citation("golfaudit policy", "suppressions belong to the reviewer (--baseline, --allow), each with a "
                        "reason", "GUESS")
    RATIONALE = ("A submitter could otherwise silence the auditor from inside the code it audits. Each "
                 "`# golfaudit: ignore[RULE]` comment next to a finding adds an info finding naming it; the "
                 "finding and the verdict stand.")
