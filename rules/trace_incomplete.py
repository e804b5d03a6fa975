"""TRACE: the runtime trace of the submission's own eval could follow the reported score (`audit.py trace`)."""

from __future__ import annotations

from rules.base import Citation, Rule


class TraceIncomplete(Rule):
    ID = "TRACE"
    TITLE = "The runtime trace followed the reported score (or says why not)"
    CATEGORY = "hygiene"
    SEVERITY = "warning"
    COMMANDS = ("trace",)
    STATIC = False
    CITATION = Citation("Issue #1017", "p_t(·) must be a function only of the submitted artifact A and the strict "
                        "prefix", "#1017", "https://github.com/openai/parameter-golf/issues/1017")
    RATIONALE = ("`audit.py trace` runs the submission's own eval with per-position provenance and judges "
                 "TTT-SCORE-FIRST and TTT-NO-RESCORE from what ran. When the trace cannot tie the printed score "
                 "to validation losses (no val tokens loaded, optimizer steps after the last traced score, the "
                 "run killed), or when the static scanner and the run disagree, it says so here: an incomplete "
                 "trace is never a legality verdict.")
