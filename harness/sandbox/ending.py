"""How a sandboxed run ended, in words, and the findings that follow from it.

A run that did not reach its final score line measured nothing about the submission's score: it is never
`legal`. It draws a low-confidence legality error (verdict `needs-review`) that names what happened: a
budget ran out (with when SIGTERM and SIGKILL went), the auditor was interrupted, the payload crashed (its
exit code or signal), or a memory, disk or process limit killed it. A budget overrun is also a TRAIN- or
EVAL-TIME-600S finding: an error (so `illegal`) when measured on the reference hardware, else a warning
labelled with the hardware it was seen on.

The training budget is wall clock from the payload's start, so start-up and compilation count; the
script's own timer usually leaves its compile warm-up out (common practice, not ruled). When a run is
stopped in training on the reference hardware while the script's own timer, at its last step line, was
still inside the budget, the error is of low confidence (`needs-review`), and the message gives both clocks.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from harness import registry
from harness.logs import STEP_NEW, STEP_OLD, VAL_OLD
from harness.report import Finding
from harness.sandbox.deadline import train_end
from harness.sandbox.hardware import Hardware
from harness.sandbox.supervisor import SandboxResult

END_OF_TRAINING = ("`stopping_early: wallclock_cap train_time:…`, the last step line `step:N/N`, "
                   "`Serialized model …` or a final score line")


@dataclass(frozen=True)
class Ending:
    finished: bool                 # the final score line appeared and nothing killed the run
    what: str                      # finished, budget, interrupted, crashed, memory, disk, tasks, no-score
    detail: str                    # one sentence for the report


def status_words(status: int | None) -> str:
    """`exit code 3`, `signal SIGSEGV` (a negative status is a signal, as subprocess reports it)."""
    if status is None:
        return "an unknown status"
    if status < 0:
        try:
            return f"signal {signal.Signals(-status).name}"
        except ValueError:
            return f"signal {-status}"
    return f"exit code {status}"


def kill_words(result: SandboxResult) -> str:
    sent = []
    if result.term_at is not None:
        sent.append(f"SIGTERM at {result.term_at:.1f} s")
    if result.kill_at is not None:
        sent.append(f"SIGKILL at {result.kill_at:.1f} s")
    elif result.term_at is not None:
        sent.append(f"everything ended within the {result.grace_s:g} s grace")
    return ", ".join(sent)


def describe(result: SandboxResult) -> Ending:
    final = any(kind == "final" for _, kind, _ in result.markers)
    status = result.payload_status if result.payload_status is not None else result.exit_code
    if status is not None and status > 128 and result.payload_status is None:
        status = 128 - status                          # init reports a signal death as 128 + N
    if result.killed_for == "interrupted":
        return Ending(False, "interrupted", f"the auditor was stopped by {result.stop_signal or 'a signal'} "
                                            f"and killed the run at {result.kill_at or result.wall_s:.1f} s")
    if result.killed_for == "budget":
        phase = {"train": "training", "eval": "evaluation"}.get(result.budget_phase or "", "the run's")
        return Ending(False, "budget", f"killed by the {phase} budget ({kill_words(result)})")
    if result.killed_for in ("memory", "disk") or result.memory_limit_hit and status != 0:
        what = result.killed_for or "memory"
        return Ending(False, what, f"killed by the sandbox's {what} limit ({status_words(status)})")
    if status not in (0, None):
        tasks = " after hitting the process limit" if result.task_limit_hit else ""
        return Ending(False, "crashed", f"the payload crashed with {status_words(status)}{tasks}")
    if not final:
        return Ending(False, "no-score", f"the payload ended with {status_words(status)} without printing a final "
                                         "score line")
    return Ending(True, "finished", "reached its final score line")


def _finding(rule: str, severity: str, confidence: str, message: str, *, line: int | None = None,
             evidence: str = "") -> Finding:
    """A finding of the registered rule `rule` (its category and citation come from the rule)."""
    return registry.get(rule).finding(message, "console.log" if line else None, line, severity=severity,
                                   confidence=confidence, evidence=evidence[:300])


def _line_number(text: str, line: str) -> int | None:
    at = text.rfind(line) if line else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def own_train_seconds(line: str) -> float | None:
    """The script's own training timer on a step line (`train_time:NNNms`, `t:NNNms` or `train_time: N.Nm`)."""
    for pattern in (STEP_OLD, VAL_OLD, STEP_NEW):
        match = pattern.search(line)
        if match is None:
            continue
        found = match.groupdict()
        if found.get("ms"):
            return int(found["ms"]) / 1000
        if found.get("t"):
            return int(found["t"]) / 1000
        if found.get("min"):
            return float(found["min"]) * 60
    return None


def budget_findings(result: SandboxResult, train_s: float, eval_s: float, tolerance_s: float, hardware: Hardware,
                    log_text: str) -> list[Finding]:
    """TRAIN-/EVAL-TIME-600S for a run stopped by its budget, citing the console lines that show why."""
    if result.killed_for != "budget":
        return []
    severity, confidence = ("error", "high") if hardware.reference else ("warning", "medium")
    where = hardware.label
    kills = kill_words(result)
    ended = train_end(result.markers)
    if result.budget_phase == "eval" and ended is not None:
        at, line = ended
        return [_finding("EVAL-TIME-600S", severity, confidence,
                         f"evaluation had not ended {eval_s:g} s (+ {tolerance_s:g} s tolerance) after training ended "
                         f"at {at:.1f} s {where}: no final score line by {result.term_at:.1f} s; stopped ({kills}); "
                         f"log kept at {result.log_path}", line=_line_number(log_text, line), evidence=line)]
    if result.budget_phase == "train":
        steps = [line for _, kind, line in result.markers if kind == "step"]
        last = steps[-1] if steps else ""
        seen = f"the last step line is `{last[:120]}`" if last else "no step line either"
        own = own_train_seconds(last)
        if own is not None:
            seen += f" (the script's own timer: {own:g} s)"
            if hardware.reference and own <= train_s + tolerance_s:
                confidence = "low"         # start-up or compilation took the wall clock, not the timed loop
                seen += "; start-up and compilation count in the wall clock, the script's timer leaves them out"
        return [_finding("TRAIN-TIME-600S", severity, confidence,
                         f"training had not ended after {train_s:g} s (+ {tolerance_s:g} s tolerance) {where}: "
                         f"the console shows no end-of-training line ({END_OF_TRAINING}); {seen}; stopped "
                         f"({kills}); log kept at {result.log_path}",
                         line=_line_number(log_text, last), evidence=last or "(no step line)")]
    rule = "TRAIN-TIME-600S" if ended is None else "EVAL-TIME-600S"
    return [_finding(rule, severity, confidence, f"killed at the budget of {train_s + eval_s:g} s (train {train_s:g} + "
                     f"eval {eval_s:g}) {where} ({kills}); log kept at {result.log_path}")]


def unfinished_finding(ending: Ending, result: SandboxResult) -> list[Finding]:
    """The needs-review finding of a run that did not reach its final score line (none for one that did)."""
    if ending.finished:
        return []
    return [_finding("REPRODUCIBILITY", "error", "low",
                     f"the run did not finish: {ending.detail}; it measured nothing about the submission's score "
                     f"(log kept at {result.log_path})")]
