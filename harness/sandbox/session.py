"""Run one submission end to end in the sandbox and fold the outcome into a `SubmissionReport`."""

from __future__ import annotations

from pathlib import Path

from harness import registry
from harness.measure import claims_of
from harness.report import SubmissionReport, judge
from harness.sandbox.outcome import analyse
from harness.sandbox.prepare import PrepareError, RunOptions, prepare_run
from harness.sandbox.stop import Interrupted
from harness.sandbox.supervisor import SandboxError, free_uid, run_sandboxed
from harness.submission import LoadError, Submission


def run_submission(path: Path, opts: RunOptions) -> SubmissionReport:
    """Lay out, run and analyse one records folder (or script); problems become an `error` report."""
    display = str(path)
    try:
        sub = Submission(path, display)
        track = sub.track
        claims = claims_of(sub)
    except (LoadError, OSError) as exc:
        return judge(display, "unknown", [], {}, {}, error=str(exc))
    try:
        prep = prepare_run(sub, opts, free_uid())
        result = run_sandboxed(prep.spec)
    except Interrupted as exc:                # stopped while the run was being laid out: nothing ran
        problem = registry.get("REPRODUCIBILITY").finding(
            f"the run did not finish: the auditor was stopped by {exc} while laying the run out; nothing ran",
            severity="error", confidence="low")
        run = {"killed_for": "interrupted", "stop_signal": str(exc), "finished": False, "ending": "interrupted"}
        return judge(display, track, [problem], claims, {"run": run})
    except (PrepareError, SandboxError, LoadError, ValueError, OSError) as exc:
        problem = registry.get("REPRODUCIBILITY").finding(f"cannot run: {exc}", severity="error", confidence="low")
        return judge(display, track, [problem], claims, {}, error=f"cannot run: {exc}")
    findings, measured = analyse(sub, opts, prep, result)
    return judge(display, track, findings, claims, measured)
