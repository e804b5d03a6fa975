"""Run the traced child process, read its events, and fold the runtime findings together with the static
scanner's TTT findings (both shown; disagreements flagged; a static needs-review resolved by a proof)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import registry
from harness.engine import audit_submission
from harness.report import Finding, SubmissionReport, judge
from harness.sandbox.lifeline import die_with_parent
from harness.sandbox.stop import Interrupted
from harness.sandbox.supervisor import SandboxError, free_uid, run_sandboxed
from harness.trace import sandboxed, verdict
from harness.trace import timeline as tl_mod
from harness.trace.plot import plot_timeline
from harness.trace.sandboxed import SandboxOptions

REPO = Path(__file__).resolve().parents[2]
STATIC_RULES = ("TTT-SCORE-FIRST", "TTT-NO-RESCORE")
# the submission's own settings, cut to a minimum run (a submission ignores the ones it does not read)
DEFAULT_ENV = {"ITERATIONS": "1", "WARMUP_STEPS": "0", "MAX_WALLCLOCK_SECONDS": "5", "VAL_LOSS_EVERY": "0",
               "TRAIN_LOG_EVERY": "1", "TTT_ENABLED": "1", "TORCHDYNAMO_DISABLE": "1"}
# one process: scripts start torch.distributed when RANK and WORLD_SIZE are both set
DROPPED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class TraceRun:
    events: list[dict[str, Any]]
    error: str | None
    output: str
    sandbox: dict[str, Any] | None = None     # isolation, limits, budget, log path (None: --no-sandbox)


def run_child_sandboxed(script: Path, data: Path, tokenizer: Path | None, tokens: int | None,
                        env: dict[str, str], opts: SandboxOptions, artifact: Path | None = None,
                        whole_folder: bool = True) -> TraceRun:
    """Run `harness.trace.child` on a copy of the submission inside the sandbox; never raises on its failure."""
    try:
        lay = sandboxed.layout(script, data, tokenizer, tokens, env, artifact, opts, free_uid(), DEFAULT_ENV,
                               whole_folder)
        result = run_sandboxed(lay.spec)
    except (SandboxError, OSError) as exc:
        return TraceRun([], f"{script}: cannot run the trace in the sandbox: {exc}", "")
    except Interrupted as exc:                # stopped while the run was being laid out: nothing ran
        return TraceRun([], f"{script}: the auditor was stopped by {exc} before the traced run started", "",
                        {"killed_for": "interrupted", "stop_signal": str(exc)})
    summary = sandboxed.sandbox_summary(result, lay)
    if result.killed_for == "interrupted":
        return TraceRun([], f"{script}: the traced run was killed when the auditor was stopped by "
                            f"{result.stop_signal} (log {result.log_path})", "", summary)
    if result.killed_for:
        limit = f"the {opts.budget:.0f} s budget" if result.over_budget else f"its {result.killed_for} limit"
        return TraceRun([], f"{script}: the traced run passed {limit} and was killed by the sandbox "
                            f"(log {result.log_path})", "", summary)
    if not lay.events.is_file():
        return TraceRun([], f"{script}: the traced process failed in the sandbox (status {result.exit_code}): "
                            f"{sandboxed.console_tail(result.log_path)} (log {result.log_path})", "", summary)
    try:
        events, error = sandboxed.read_events(lay.events)
    except (OSError, ValueError) as exc:
        return TraceRun([], f"{script}: {exc}", "", summary)
    return TraceRun(events, error, "", summary)


def run_child(script: Path, data: Path, tokenizer: Path | None, tokens: int | None, env: dict[str, str],
              timeout: float = 600.0, artifact: Path | None = None) -> TraceRun:
    """Run `harness.trace.child` on `script` in a scratch working folder; never raises on its failure."""
    inherited = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    full = {**inherited, **DEFAULT_ENV, "DATA_PATH": str(data.resolve()),
            "VAL_FILES": str(data.resolve() / "fineweb_val_*.bin"), "PYTHONPATH": str(REPO)}
    if tokenizer is not None:
        full["TOKENIZER_PATH"] = str(tokenizer.resolve())
    full.update(env)
    with tempfile.TemporaryDirectory(prefix="golfaudit-trace-") as tmp:
        out = Path(tmp) / "events.json"
        if artifact is not None:      # where a script that loads it by name from its working folder finds it
            shutil.copy2(artifact, Path(tmp) / artifact.name)
        cmd = [sys.executable, "-m", "harness.trace.child", str(script.resolve()), str(out)]
        if tokens is not None:
            cmd += ["--tokens", str(tokens)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=full, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=die_with_parent(signal.SIGKILL))     # never outlives the auditor
        except subprocess.TimeoutExpired:
            return TraceRun([], f"{script}: the traced run passed the {timeout:.0f} s limit", "")
        text = proc.stdout + proc.stderr
        if not out.is_file():
            tail = text.strip().splitlines()[-1:] or ["no output"]
            return TraceRun([], f"{script}: the traced process failed (status {proc.returncode}): {tail[0]}", text)
        data_out = json.loads(out.read_text(encoding="utf-8"))
    return TraceRun(data_out["events"], data_out.get("error"), text)


def static_findings(folder: Path) -> list[Finding]:
    rep = audit_submission(folder, rule_ids=STATIC_RULES)
    return list(rep.findings)


def combine(static: list[Finding] | None, runtime: list[Finding], file: str) -> list[Finding]:
    """Both sets, static ones marked; a static low-confidence error is suppressed by a runtime proof of the
    same rule, and a static error the run contradicts (or a runtime error the scanner missed) is flagged."""
    proved = {f.rule for f in runtime if f.severity == "info" and f.category == "legality"}
    if proved:
        proved |= set(STATIC_RULES)   # the proof covers both orders: scored first and never re-scored
    broken = {f.rule for f in runtime if f.severity == "error"}
    out: list[Finding] = []
    disagree: list[str] = []
    if static is None:          # the static check did not run: nothing to compare
        return list(runtime)
    for f in static:
        f = replace(f, message="[static] " + f.message)
        if f.severity == "error" and not f.suppressed and f.rule in proved:
            if f.confidence == "low":
                f = f.suppress("resolved by `audit.py trace`: the run proved the order")
            else:
                disagree.append(f"static {f.rule} says illegal, the traced run proved it legal")
        out.append(f)
    static_errors = {f.rule for f in static if f.severity == "error" and not f.suppressed}
    for rule in sorted(broken - static_errors):
        disagree.append(f"the traced run found a {rule} violation the static scanner did not report")
    out.extend(runtime)
    for text in disagree:
        out.append(registry.get("TRACE").finding(f"static and runtime disagree: {text}", file, severity="warning",
                                              confidence="high"))
    return out


def trace_submission(folder: Path, script: Path, data: Path, tokenizer: Path | None = None,
                     tokens: int | None = None, env: dict[str, str] | None = None, plot: Path | None = None,
                     static: bool = True, timeout: float = 600.0, artifact: Path | None = None,
                     sandbox: SandboxOptions | None = None) -> tuple[SubmissionReport, tl_mod.Timeline]:
    """Trace `script` (inside the sandbox when `sandbox` is given, else as a plain subprocess for debugging)
    and judge the order; the report keeps the sandbox's limits and the run's log path."""
    if sandbox is not None:
        run = run_child_sandboxed(script, data, tokenizer, tokens, env or {}, sandbox, artifact,
                                  whole_folder=script.parent.resolve() == folder.resolve())
    else:
        run = run_child(script, data, tokenizer, tokens, env or {}, timeout, artifact)
    tl = tl_mod.build(run.events)
    name = script.name
    runtime = verdict.findings(tl, name, run.error)
    findings = combine(static_findings(folder) if static else None, runtime, name)
    measured: dict[str, Any] = {"trace": {
        "events": len(run.events), "val_tokens": tl.val_tokens, "reported_line": tl.reported_line,
        "reported_bpb": tl.reported_bpb, "scored_positions": len(tl.reported_score),
        "trained_positions": len(tl.first_trained),
        "train_events": sum(1 for e in run.events if e["kind"] == "train"),
        "optimizer_steps": sum(1 for e in run.events if e["kind"] == "step")}}
    if run.sandbox is not None:
        measured["trace"]["log"] = run.sandbox["log"]
    measured["sandbox"] = run.sandbox or "not used (--no-sandbox: a plain subprocess, for debugging only)"
    if plot is not None and tl.reported_score:
        try:
            measured["trace"]["plot"] = str(plot_timeline(tl, plot, title=f"{folder.name}: score vs train order"))
        except (ImportError, OSError) as exc:
            measured["trace"]["plot"] = f"not written: {exc}"
    return judge(str(folder), "trace", findings, {}, measured), tl
