"""How a sandboxed run ended and what follows from it, on results built by hand (no sandbox needed):
phase-aware deadlines, the end-of-training lines, the words for each ending, TIME findings by hardware,
and the stop signals' handler."""

from __future__ import annotations

import os
import signal

import pytest

from harness.report import decide_verdict
from harness.sandbox import stop
from harness.sandbox.deadline import PhaseBudget, deadline, default_grace, train_end
from harness.sandbox.ending import budget_findings, describe, own_train_seconds, unfinished_finding
from harness.sandbox.hardware import Hardware
from harness.sandbox.markers import classify
from harness.sandbox.supervisor import SandboxResult

H100 = "NVIDIA H100 80GB HBM3"
STEP = "step:40/20000 train_loss:3.1000 train_time:4000ms step_avg:100.00ms"


def _result(**kw) -> SandboxResult:
    return SandboxResult(exit_code=kw.pop("exit_code", 0), wall_s=kw.pop("wall_s", 7.0), log_path="/w/console.log",
                         uid=200_001, **kw)


def test_phase_deadlines():
    phases = PhaseBudget(train_s=600, eval_s=600, tolerance_s=1)
    assert deadline(1202, phases, None) == (601, "train")
    assert deadline(1202, phases, 100.0) == (701, "eval")
    assert deadline(1202, phases, 600.5) == (1201.5, "eval")
    assert deadline(30, None, None) == (30, "total")
    assert default_grace(0) <= 5 < default_grace(8)


@pytest.mark.parametrize("line,kind", [
    ("stopping_early: wallclock_cap train_time:600038ms step:13780/20000", "stop"),
    ("step:20000/20000 val_loss:2.0101 val_bpb:1.1905 train_time:2400107ms step_avg:120.01ms", "stop"),
    ("4945/4945 train_loss: 2.9000 train_time: 9.9m tok/s: 1", "stop"),
    ("Serialized model int6+lzma: 15123456 bytes", "serialize"),
    ("final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2", "final"),
    (STEP, "step"),
    ("step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.02ms", "step"),
])
def test_end_of_training_lines(line, kind):
    assert classify(line) == kind
    ended = train_end([(1.0, "step", STEP), (2.0, classify(line), line)])
    assert (ended is not None) == (kind in ("stop", "serialize", "final"))


def test_endings_are_named():
    final = [(9.0, "final", "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2")]
    assert describe(_result(markers=final)).finished
    assert describe(_result()).what == "no-score"
    crash = describe(_result(exit_code=1, payload_status=1))
    assert crash.what == "crashed" and "exit code 1" in crash.detail
    segv = describe(_result(exit_code=139))                 # init's 128 + N when it could not report
    assert "SIGSEGV" in segv.detail
    budget = describe(_result(exit_code=-9, killed_for="budget", budget_phase="train", term_at=6.0, kill_at=11.0,
                              markers=final))
    assert not budget.finished and "training budget" in budget.detail
    assert "SIGTERM at 6.0 s" in budget.detail and "SIGKILL at 11.0 s" in budget.detail
    stopped = describe(_result(exit_code=-9, killed_for="interrupted", stop_signal="SIGINT", kill_at=3.0))
    assert stopped.what == "interrupted" and "SIGINT" in stopped.detail
    assert describe(_result(exit_code=137, killed_for="memory", memory_limit_hit=True)).what == "memory"


def test_an_unfinished_run_needs_review():
    ending = describe(_result(exit_code=1, payload_status=1))
    found = unfinished_finding(ending, _result())
    assert decide_verdict(found) == "needs-review"
    assert unfinished_finding(describe(_result(markers=[(1.0, "final", "final_x val_loss:1 val_bpb:1")])),
                              _result()) == []


@pytest.mark.parametrize("hardware,verdict", [
    (Hardware(8, (H100,) * 8), "illegal"),
    (Hardware(1, (H100,)), "legal"),
    (Hardware(8, ("NVIDIA H200",) * 8), "legal"),
    (Hardware(0), "legal"),
])
def test_train_budget_overrun_is_illegal_only_on_8_h100s(hardware, verdict):
    over = "step:5000/20000 train_loss:3.1000 train_time:605000ms step_avg:121.00ms"     # its own timer too
    result = _result(exit_code=-15, killed_for="budget", budget_phase="train", term_at=601.0, kill_at=None,
                     grace_s=5.0, markers=[(500.0, "step", STEP), (600.5, "step", over)])
    log = "Hyperparameters:\n" + STEP + "\n" + over + "\n"
    found = budget_findings(result, 600, 600, 1, hardware, log)
    assert [f.rule for f in found] == ["TRAIN-TIME-600S"]
    assert decide_verdict(found) == verdict
    assert hardware.label in found[0].message and "no end-of-training line" in found[0].message
    assert (found[0].file, found[0].line, found[0].evidence) == ("console.log", 3, over)


def test_train_overrun_within_the_scripts_own_timer_needs_review_on_8_h100s():
    """Compilation before the timed loop took the wall clock: the script's own timer (590 s) was inside."""
    late = "step:4900/20000 train_loss:3.1000 train_time:590000ms step_avg:120.41ms"
    result = _result(exit_code=-15, killed_for="budget", budget_phase="train", term_at=601.0,
                     markers=[(600.0, "step", late)])
    found = budget_findings(result, 600, 600, 1, Hardware(8, (H100,) * 8), late + "\n")
    assert decide_verdict(found) == "needs-review"
    assert "own timer: 590 s" in found[0].message and "compilation" in found[0].message


def test_the_scripts_own_timer_is_read_from_each_step_format():
    assert own_train_seconds(STEP) == 4.0
    assert own_train_seconds("4945/20000 train_loss: 2.9000 train_time: 9.9m tok/s: 1") == pytest.approx(594)
    assert own_train_seconds("step:10/20 loss:3.0 t:1500ms") == 1.5
    assert own_train_seconds("no step here") is None


def test_eval_budget_overrun_cites_the_end_of_training():
    stop_line = "stopping_early: wallclock_cap train_time:599000ms step:5000/20000"
    result = _result(exit_code=-9, killed_for="budget", budget_phase="eval", term_at=1201.0, kill_at=1206.0,
                     markers=[(600.0, "stop", stop_line)])
    found = budget_findings(result, 600, 600, 1, Hardware(8, (H100,) * 8), stop_line + "\n")
    assert [f.rule for f in found] == ["EVAL-TIME-600S"] and found[0].line == 1
    assert "SIGTERM at 1201.0 s, SIGKILL at 1206.0 s" in found[0].message


def test_stop_signals_raise_outside_the_watch_and_are_recorded_inside():
    before = signal.getsignal(signal.SIGINT)
    with stop.stop_on_signals():
        with pytest.raises(stop.Interrupted) as caught:
            os.kill(os.getpid(), signal.SIGTERM)
        assert caught.value.exit_status == 143
    with stop.stop_on_signals():
        with stop.watching():
            os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested() == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before
    assert stop.requested() is None                 # the next run in this process is not stopped by it
