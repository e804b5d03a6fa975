"""REPRODUCIBILITY: the submission re-runs from its folder, within the sandbox's limits (`audit.py run`)."""

from __future__ import annotations

from rules.base import Citation, Rule


class Reproducibility(Rule):
    ID = "REPRODUCIBILITY"
    TITLE = "The submission re-runs from its folder and writes a readable artifact"
    CATEGORY = "legality"
    SEVERITY = "warning"
    COMMANDS = ("run",)
    STATIC = False
    CITATION = Citation("README, Leaderboard rules", "Any non-reproducible results can be disqualified", "README")
    RATIONALE = ("`audit.py run` re-runs the folder in a sandbox. A run that cannot start, exits with an error, "
                 "hits the sandbox's memory, process or disk limit, writes no compressed artifact, or writes one "
                 "that does not decompress is reported here: the record cannot be reproduced as shipped. The "
                 "budgets and the size cap are their own rules (TRAIN-TIME-600S, EVAL-TIME-600S, SIZE-CAP-16MB). "
                 "A limit the sandbox contained or a non-zero exit is a warning; what leaves the run's result "
                 "unknown is an error of low confidence (needs review).")
