"""Which console lines mark a phase: training stopped, the model serialized, a final score, a training step."""

from __future__ import annotations

from harness.logs import FINAL, MODEL, STEP_NEW, STEP_OLD, STOP, TOTAL, VAL_OLD


def classify(line: str) -> str | None:
    """`stop` (training ended: the wallclock stop, or the step line of the last iteration `N/N`),
    `serialize` (the model was written), `final`, `step`, `sandbox` (a message of the sandbox itself) or None."""
    if line.startswith("golfaudit-sandbox:"):
        return "sandbox"
    if STOP.search(line):
        return "stop"
    match = FINAL.search(line)
    if match and not match.group("label").lower().startswith(("diagnostic", "pre-quantization")):
        return "final"
    if MODEL.search(line) or TOTAL.search(line):
        return "serialize"
    step = STEP_OLD.search(line) or STEP_NEW.search(line) or VAL_OLD.search(line)
    if step:
        return "stop" if 0 < int(step.group("it")) == int(step.group("step")) else "step"
    return None
