"""EVAL-ADAPTER: `audit.py eval` could build and load the submission's model (else the runtime checks did not run)."""

from __future__ import annotations

from rules.base import Citation, Rule


class EvalAdapter(Rule):
    ID = "EVAL-ADAPTER"
    TITLE = "The model could be built and loaded for the runtime checks"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "low"
    COMMANDS = ("eval",)
    STATIC = False
    CITATION = Citation("Issue #1017", "p_t(·) must be a function only of the submitted artifact A and the strict "
                        "prefix x_1, …, x_{t−1}", "#1017", "https://github.com/openai/parameter-golf/issues/1017")
    RATIONALE = ("`audit.py eval` imports the script without running main(), builds the model and loads the "
                 "artifact with the submission's own code, then runs the flip test (C1-STRICT-CAUSAL), the "
                 "normalisation test (C2-FULL-NORMALIZED-DISTRIBUTION) and its own scoring. When it cannot, none "
                 "of these ran: the verdict is needs-review and the message says which hook to write.")
