"""SUPPRESSION: the reviewer's allow file is used as written (each entry has a reason and matches something)."""

from __future__ import annotations

from rules.base import Citation, Rule


class Suppression(Rule):
    ID = "SUPPRESSION"
    TITLE = "Every reviewer suppression has a reason and matches a finding"
    CATEGORY = "hygiene"
    SEVERITY = "error"
    STATIC = False
    CITATION = Citation("golfaudit policy", "suppressions belong to the reviewer (--baseline, --allow), each with a "
                        "reason", "GUESS")
    RATIONALE = ("`--allow` entries suppress findings only with a reason the reviewer wrote; an entry without "
                 "one suppresses nothing and is an error, an entry that matches no finding is reported as stale "
                 "(info).")
