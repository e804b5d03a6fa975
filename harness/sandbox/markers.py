"""Which console lines mark a phase: training stopped, a final score, a training step."""

from __future__ import annotations

from harness.logs import FINAL, STEP_NEW, STEP_OLD, STOP, VAL_OLD


def classify(line: str) -> str | None:
    """`stop`, `final`, `step`, `sandbox` (a message of the sandbox itself) or None."""
    if line.startswith("golfaudit-sandbox:"):
        return "sandbox"
    if STOP.search(line):
        return "stop"
    match = FINAL.search(line)
    if match and not match.group("label").lower().startswith(("diagnostic", "pre-quantization")):
        return "final"
    if STEP_OLD.search(line) or STEP_NEW.search(line) or VAL_OLD.search(line):
        return "step"
    return None
