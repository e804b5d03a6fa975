"""Turn a finished sandboxed run into findings and measured values (all tagged `reproduced`).

Phase times come from when the log's own markers appeared on the console, counted from the payload's start
(the sandbox's own start-up is reported apart): training ends at the `stopping_early` line, the last
iteration's step line or the serialize line (else the last step line), evaluation at the last final-score
line. The script's own numbers (train_time, eval_time) are read from the same log. How the run ended, and
what a run that did not finish means for the verdict: harness.sandbox.ending. Fewer than 8 GPUs: an 8xH100 step-time
extrapolation is added, labelled ESTIMATE.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import registry
from harness.codeload import load_code
from harness.limits import REFERENCE_GPUS, SIZE_CAP_BYTES, TRAIN_BUDGET_S, is_ten_minute
from harness.logs import ParsedLog, parse_log_text, read_log_text
from harness.report import Finding, Measured
from harness.sandbox.artifact import Artifact, find_artifacts, measure_artifact
from harness.sandbox.ending import budget_findings, describe, unfinished_finding
from harness.sandbox.hardware import detect
from harness.sandbox.launch import wallclock_cap
from harness.sandbox.prepare import Prepared, RunOptions
from harness.sandbox.supervisor import SandboxResult
from harness.submission import Submission


def _finding(rule: str, severity: str, message: str, *, confidence: str = "high", file: str | None = None,
             line: int | None = None, evidence: str = "") -> Finding:
    """A finding of the registered rule `rule`: its category, citation and source come from the rule."""
    return registry.get(rule).finding(message, file, line, severity=severity, confidence=confidence,
                                   evidence=evidence[:300])


def _first(markers: list[tuple[float, str, str]], kind: str) -> float | None:
    return next((t for t, k, _ in markers if k == kind), None)


def _last(markers: list[tuple[float, str, str]], kind: str) -> float | None:
    times = [t for t, k, _ in markers if k == kind]
    return times[-1] if times else None


def phase_times(result: SandboxResult) -> tuple[float | None, float | None]:
    """(seconds from the payload's start to the end of training, seconds of evaluation after it)."""
    train_end = _first(result.markers, "stop")
    if train_end is None:
        train_end = _first(result.markers, "serialize")
    if train_end is None:
        train_end = _last(result.markers, "step")
    final = _last(result.markers, "final")
    eval_s = final - train_end if final is not None and train_end is not None and final >= train_end else None
    return train_end, eval_s


def step_time_ms(log: ParsedLog) -> float | None:
    """Mean training step time from the log's last step line (train_time / step)."""
    hit = log.last_step_time_ms
    if hit is None:
        return None
    import re

    match = re.search(r"step:(\d+)/|^(?:\d{10}\.\d+ )?(\d+)/\d+ ", hit.text)
    step = int(match.group(1) or match.group(2)) if match else (log.stop_step or 0)
    return hit.value / step if step else None


def estimate_8xh100(log: ParsedLog, gpus: int) -> dict[str, Any] | None:
    step_ms = step_time_ms(log)
    if step_ms is None or gpus >= REFERENCE_GPUS or gpus <= 0:
        return None
    est = step_ms * gpus / REFERENCE_GPUS
    return {
        "label": "ESTIMATE (not a measurement): same global batch, work split over 8 GPUs, perfect scaling",
        "measured_step_ms": Measured(round(step_ms, 2), "reproduced", f"on {gpus} GPU(s)"),
        "estimated_8xh100_step_ms": round(est, 2),
        "estimated_steps_in_600s": int(TRAIN_BUDGET_S * 1000 / est) if est else None,
    }


def code_bytes(sub: Submission) -> int:
    return sum(sub.size(n) for n in sub.script_names)


def analyse(sub: Submission, opts: RunOptions, prep: Prepared, result: SandboxResult) -> tuple[list[Finding], dict]:
    text, size, truncated = read_log_text(Path(result.log_path), 64 << 20)
    log = parse_log_text(text, "console.log", size, truncated)
    findings: list[Finding] = []
    train_end, eval_s = phase_times(result)
    ending = describe(result)
    hardware = detect(opts.gpus)
    run: dict[str, Any] = {
        "log": result.log_path,
        "workdir": str(prep.workdir),
        "command": prep.spec.argv,
        "launch_source": prep.plan.source or "(none found: plain script)",
        "settings": prep.env_settings,
        "settings_dropped": prep.plan.dropped,
        "exit_code": result.exit_code,
        "payload_status": result.payload_status,
        "finished": ending.finished,
        "ending": ending.what,
        "ending_detail": ending.detail,
        "wall_s": Measured(result.wall_s, "reproduced", "the submission's time: payload start to the exit of "
                                                        "every process (sandbox start-up not included)"),
        "startup_s": {"prepare": round(prep.setup_s, 3), "namespace": result.startup_s},
        "budget_s": {"train": opts.train_budget, "eval": opts.eval_budget, "tolerance": opts.time_tolerance,
                     "grace": prep.spec.grace_s},
        "over_budget": result.over_budget,
        "budget_phase": result.budget_phase,
        "signals": {"sigterm_at_s": result.term_at, "sigkill_at_s": result.kill_at},
        "killed_for": result.killed_for,
        "stop_signal": result.stop_signal,
        "hardware": hardware.label,
        "isolation": {"namespaces": result.namespaces, "uid": result.uid, "limits": result.limits_applied,
                      "filesystem": "tmpfs root; system dirs and interpreter read-only; submission copy rw; "
                                    "data read-only with decoy val; private /tmp"},
        "peak_tasks": result.peak_tasks,
        "peak_memory_bytes": result.peak_rss,
        "task_limit_hit": result.task_limit_hit,
        "memory_limit_hit": result.memory_limit_hit,
        "disk_limit_hit": result.disk_limit_hit,
        "disk_written_bytes": result.disk_written,
        "largest_file_bytes": result.largest_file,
        "disk_unmeasured": result.disk_unmeasured,
        "leftover_processes_killed": result.leftovers_killed,
        "log_truncated": result.log_truncated,
        "gpus": opts.gpus,
        "flash_attn_interface": prep.fa3,
        "data": {"folder": str(prep.data_folder), "train_shards": len(prep.train_files),
                 "val": "decoys", "decoys": [d.__dict__ for d in prep.decoys],
                 "decoy_sidecars": [d.__dict__ for d in prep.decoy_sidecars]},
    }
    if train_end is not None:
        run["train_wall_s"] = Measured(round(train_end, 3), "reproduced",
                                       "payload start to the end-of-training line (imports and compile "
                                       "included)")
    if eval_s is not None:
        run["eval_wall_s"] = Measured(round(eval_s, 3), "reproduced", "end of training to the last final-score line")
    if log.train_time_ms is not None:
        run["train_time_s_logged"] = Measured(log.train_time_ms.value / 1000, "reproduced",
                                              f"console.log:{log.train_time_ms.line}")
    if log.final is not None:
        run["decoy_val_bpb"] = Measured(log.final.value, "reproduced",
                                        "scored on DECOY val tokens: not the submission's score")
    estimate = estimate_8xh100(log, opts.gpus)
    if estimate:
        run["estimate_8xh100"] = estimate

    measured: dict[str, Any] = {"run": run}
    artifacts = find_artifacts(prep.workdir / "run")
    code = code_bytes(sub)
    measured["code_bytes"] = Measured(code, "reproduced", "+".join(sub.script_names) + " bytes on disk")
    if artifacts:
        art: Artifact = measure_artifact(artifacts[0])
        total = code + art.bytes
        measured["artifact"] = {
            "path": str(art.path), "bytes": Measured(art.bytes, "reproduced", art.path.name),
            "codec": art.check.codec, "decompressed_bytes": art.check.out_bytes, "decompresses": art.check.ok,
            "torch_zip": art.check.torch_zip, "detail": art.check.detail,
            "others": [str(p) for p in artifacts[1:]],
        }
        measured["total_bytes_max"] = Measured(total, "reproduced", f"code {code} + {art.path.name} {art.bytes}")
        logged_code = log.code_bytes.value if log.code_bytes else None
        if logged_code is not None and logged_code != code:
            measured["total_bytes_with_logged_code"] = Measured(art.bytes + logged_code, "reproduced",
                                                                f"code as the run's log counts it: {logged_code}")
        if total >= SIZE_CAP_BYTES:
            best = min(total, art.bytes + (logged_code or code))
            severity = "error" if best >= SIZE_CAP_BYTES else "warning"
            findings.append(_finding("SIZE-CAP-16MB", severity,
                                     f"re-run artifact is {total:,} bytes (code {code:,} + model {art.bytes:,}), "
                                     f"not under {SIZE_CAP_BYTES:,} ({art.path})"))
        if not art.check.ok:
            findings.append(_finding("REPRODUCIBILITY", "error", f"{art.path.name} does not decompress within the "
                                     f"caps: {art.check.codec}: {art.check.detail} ({art.path})", confidence="low"))
    elif result.exit_code == 0:
        findings.append(_finding("REPRODUCIBILITY", "warning", "the run wrote no compressed artifact (*.ptz)"))

    strict = "error" if hardware.reference else "warning"
    where = hardware.label
    findings += budget_findings(result, opts.train_budget, opts.eval_budget, opts.time_tolerance, hardware, text)
    if log.train_time_ms is not None and log.train_time_ms.value / 1000 > opts.train_budget + opts.time_tolerance:
        findings.append(_finding("TRAIN-TIME-600S", strict, f"training ran {log.train_time_ms.value / 1000:.1f}s by "
                                 f"its own log, over the {opts.train_budget:.0f}s budget {where}",
                                 evidence=log.train_time_ms.text))
    if eval_s is not None and eval_s > opts.eval_budget:
        findings.append(_finding("EVAL-TIME-600S", strict, f"evaluation took {eval_s:.1f}s after training, over the "
                                 f"{opts.eval_budget:.0f}s budget {where}"))
    findings += wallclock_findings(sub, prep, log)
    findings = outside_the_budget_track(sub, findings)
    if result.memory_limit_hit or result.task_limit_hit or result.disk_limit_hit:
        what = " and ".join(w for w, hit in (("memory", result.memory_limit_hit), ("process", result.task_limit_hit),
                                              ("disk", result.disk_limit_hit)) if hit)
        findings.append(_finding("REPRODUCIBILITY", "warning", f"the run hit the sandbox's {what} limit "
                                 f"({', '.join(result.limits_applied)}); it was contained", confidence="medium"))
    findings += unfinished_finding(ending, result)
    return findings, measured


TIME_RULES = ("TRAIN-TIME-600S", "EVAL-TIME-600S", "GPTQ-IN-TRAIN-BUDGET")


def outside_the_budget_track(sub: Submission, findings: list[Finding]) -> list[Finding]:
    """The 600 s budgets bind the 10-minute track only: elsewhere a time finding is a warning, as statically."""
    if is_ten_minute(sub):
        return findings
    return [replace(f, severity="warning", message=f"{f.message} (the {sub.track} track has no 600 s budget)")
            if f.rule in TIME_RULES and f.severity == "error" else f for f in findings]


def _script_wallclock_cap(sub: Submission, script: str) -> float | None:
    """The default MAX_WALLCLOCK_SECONDS of `script`, read through packing (lzma/b85 wrappers, exec'd
    siblings): the wrapper of a packed record does not show it, its unpacked source does."""
    try:
        texts = [unit.text for unit in load_code(sub, script).units]
    except Exception:  # noqa: BLE001 - unreadable source is reported by the static audit
        texts = []
    if not texts:
        try:
            texts = [sub.read_source(script)]
        except Exception:  # noqa: BLE001
            return None
    for text in texts:
        cap = wallclock_cap(text)
        if cap is not None:
            return cap
    return None


def wallclock_findings(sub: Submission, prep: Prepared, log: ParsedLog) -> list[Finding]:
    """Does the script cap training at <= 600 s, and does the documented launch keep that cap?"""
    out: list[Finding] = []
    script = prep.plan.script
    default = _script_wallclock_cap(sub, script)
    for shipped in sub.logs:
        cap = shipped.max_wallclock_s
        if cap is not None and (cap.value <= 0 or cap.value > TRAIN_BUDGET_S):
            out.append(_finding("TRAIN-TIME-600S", "error", f"the shipped log ran with max_wallclock_seconds "
                                f"{cap.value:g}", confidence="medium", file=shipped.name, line=cap.line,
                                evidence=cap.text))
    if log.gptq_reserve_s is not None and log.gptq_hessian_s is not None \
            and log.gptq_hessian_s.value > log.gptq_reserve_s.value:
        out.append(_finding("GPTQ-IN-TRAIN-BUDGET", "warning", f"in the re-run, Hessian collection took "
                            f"{log.gptq_hessian_s.value:g}s, more than the {log.gptq_reserve_s.value:g}s reserved "
                            "inside the training budget", confidence="medium", evidence=log.gptq_hessian_s.text))
    documented = prep.plan.env.get("MAX_WALLCLOCK_SECONDS")
    if default is None and documented is None:
        out.append(_finding("TRAIN-TIME-600S", "warning", "the script does not visibly read MAX_WALLCLOCK_SECONDS; "
                            "cannot confirm it stops training by 600 s", confidence="low", file=script))
    if default is not None and (default <= 0 or default > TRAIN_BUDGET_S):
        out.append(_finding("TRAIN-TIME-600S", "error", f"the script's default MAX_WALLCLOCK_SECONDS is {default:g} "
                            "(no cap at 600 s)", confidence="medium", file=script))
    if documented is not None:
        try:
            value = float(documented)
        except ValueError:
            value = None
        if value is None or value <= 0 or value > TRAIN_BUDGET_S:
            out.append(_finding("TRAIN-TIME-600S", "error", f"the documented launch sets MAX_WALLCLOCK_SECONDS="
                                f"{documented} ({prep.plan.source})", confidence="medium", file="README.md"))
    return out
