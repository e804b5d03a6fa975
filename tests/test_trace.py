"""`audit.py trace`: provenance through torch, the timeline, verdicts on our five tiny example submissions,
and the CLI (one subprocess run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from harness.data.shards import write_shard  # noqa: E402
from harness.report import decide_verdict  # noqa: E402
from harness.trace import child, timeline, verdict  # noqa: E402
from harness.trace.provenance import EventLog, ProvenanceMode, set_tag, shadow, tag_tokens  # noqa: E402
from harness.trace.traced_run import combine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "tests" / "fixtures" / "trace"


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory) -> Path:
    return write_example_val(tmp_path_factory.mktemp("trace_val"))


def write_example_val(d: Path) -> Path:
    """The val shard the examples under tests/fixtures/trace are written for: 97 tokens, BOS at 0, 30, 60."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, 64, size=97)
    tokens[[0, 30, 60]] = 1          # document starts (BOS) for the per-document example
    write_shard(d / "fineweb_val_000000.bin", tokens)
    return d


# (example, runtime verdict, rules with an error): the same with and without the sandbox
EXAMPLE_VERDICTS = [
    ("legal_chunked", "legal", set()),
    ("legal_lora_per_doc", "legal", set()),
    ("illegal_train_first", "illegal", {"TTT-SCORE-FIRST"}),
    ("illegal_last_epoch_scoring", "illegal", {"TTT-SCORE-FIRST"}),
    ("illegal_rescore", "illegal", {"TTT-SCORE-FIRST", "TTT-NO-RESCORE"}),
]


def _trace(name: str, val_dir: Path, monkeypatch) -> tuple[timeline.Timeline, list]:
    monkeypatch.setenv("VAL_FILES", str(val_dir / "fineweb_val_*.bin"))
    result = child.trace(EXAMPLES / name / "train_gpt.py", None)
    tl = timeline.build(result["events"])
    return tl, verdict.findings(tl, "train_gpt.py", result["error"])


# ----------------------------------------------------------------------------- provenance


def test_per_token_loss_keeps_positions_through_slices_and_reductions():
    log = EventLog()
    tok = tag_tokens(torch.arange(33) % 10)
    with ProvenanceMode(log):
        y = tok[1:17].reshape(1, -1).to("cpu").long()
        assert shadow(y).tolist() == [list(range(1, 17))]
        nll = F.cross_entropy(torch.randn(16, 10), y.reshape(-1), reduction="none").reshape(1, -1)
        acc = torch.zeros((), dtype=torch.float64)
        acc += nll[:, 8:].sum().to(torch.float64)
        value = acc.item()
    loss_event = [e for e in log.events if e["kind"] == "loss"][0]
    assert loss_event["positions"] == list(range(1, 17)) and loss_event["grad"] is True
    assert set_tag(acc) == {loss_event["i"]: frozenset(range(9, 17))}
    read = log.events[-1]
    assert read["kind"] == "read" and read["value"] == pytest.approx(value)
    assert read["events"] == {str(loss_event["i"]): list(range(9, 17))}


def test_backward_is_a_train_event_and_ignored_targets_are_not_positions():
    log = EventLog()
    tok = tag_tokens(torch.tensor([3, 4, 5, 6, 7]))
    w = torch.randn(5, 10, requires_grad=True)
    with ProvenanceMode(log):
        y = tok[1:].clone()
        y[0] = -100      # an in-place write keeps the shadow; the ignored target is dropped from positions
        F.cross_entropy(w[:4], y).backward()
    kinds = [e["kind"] for e in log.events]
    assert kinds == ["start", "loss", "train"]
    assert log.events[1]["positions"] == [2, 3, 4]
    assert log.events[2]["events"] == {"1": "all"}


def test_untagged_runs_are_untouched():
    log = EventLog()
    with ProvenanceMode(log):
        loss = F.cross_entropy(torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        loss.item()
    assert [e["kind"] for e in log.events] == ["start", "backward"]   # no loss, train or read events


# ----------------------------------------------------------------------------- timeline and verdicts


def _events(*evs):
    out = [{"i": 0, "kind": "start"}]
    for e in evs:
        out.append({"i": len(out), **e})
    return out


def test_timeline_matches_the_printed_val_loss_not_the_last_read():
    events = _events(
        {"kind": "val", "n": 5},
        {"kind": "loss", "positions": [1, 2, 3, 4]},                       # 2: first pass
        {"kind": "read", "value": 1.25, "events": {"2": "all"}},
        {"kind": "train", "events": {"2": "all"}},
        {"kind": "loss", "positions": [1, 2, 3, 4]},                       # 5: second pass
        {"kind": "read", "value": 0.5, "events": {"5": "all"}},
        {"kind": "print", "text": "final val_loss:1.25000000 val_bpb:1.80336049"},
    )
    tl = timeline.build(events)
    assert tl.reported_reads == [3] and tl.matched_by == "val_loss value"
    assert tl.score_first_violations() == [] and tl.rescore_violations() == []
    fs = verdict.findings(tl, "t.py")
    assert [(f.rule, f.severity) for f in fs] == [("TTT-SCORE-FIRST", "info")]


def test_incomplete_trace_is_a_warning_not_a_verdict():
    fs = verdict.findings(timeline.build(_events({"kind": "val", "n": 5})), "t.py")
    assert [(f.rule, f.category, f.severity) for f in fs] == [("TRACE", "hygiene", "warning")]
    assert decide_verdict(fs) == "legal"


@pytest.mark.parametrize("name,verdict_,rules", EXAMPLE_VERDICTS)
def test_examples_get_the_right_runtime_verdict(name, verdict_, rules, val_dir, monkeypatch):
    tl, fs = _trace(name, val_dir, monkeypatch)
    assert tl.val_tokens == 97
    assert tl.reported_bpb is not None and tl.reported_score
    assert decide_verdict(fs) == verdict_
    assert {f.rule for f in fs if f.severity == "error"} == rules
    if verdict_ == "legal":
        # all 96 targets; the per-document run does not score the BOS tokens at 30 and 60
        skipped = set() if name == "legal_chunked" else {30, 60}
        assert set(tl.reported_score) == set(range(1, 97)) - skipped
        assert tl.first_trained, "the legal examples do train (TTT), after scoring"
        assert all(tl.first_trained[p] > tl.reported_score[p] for p in tl.first_trained)


def test_rescore_reports_only_the_positions_trained_between_the_passes(val_dir, monkeypatch):
    tl, _ = _trace("illegal_rescore", val_dir, monkeypatch)
    assert tl.reported_line.startswith("final_rescored")
    # chunks of 32 targets from position 1; the last chunk (65..96) is never trained
    assert tl.rescore_violations() == list(range(1, 65))


# ----------------------------------------------------------------------------- static + runtime


def _f(rule, severity, confidence):
    from harness.report import Finding

    return Finding(rule=rule, category="legality", severity=severity, confidence=confidence, file="t.py",
                   line=3, message="m", citation="c", source_weight="GUESS")


def test_runtime_proof_resolves_a_static_needs_review_and_flags_disagreement():
    proof = [_f("TTT-SCORE-FIRST", "info", "high")]
    merged = combine([_f("TTT-SCORE-FIRST", "error", "low")], proof, "t.py")
    assert decide_verdict(merged) == "legal"
    assert merged[0].suppressed and merged[0].message.startswith("[static]")
    merged = combine([_f("TTT-NO-RESCORE", "error", "high")], proof, "t.py")
    assert decide_verdict(merged) == "illegal"
    assert any(f.rule == "TRACE" and "disagree" in f.message for f in merged)
    merged = combine([], [_f("TTT-NO-RESCORE", "error", "high")], "t.py")
    assert any(f.rule == "TRACE" and "did not report" in f.message for f in merged)


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "audit.py", "trace", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_cli_json_and_plot(val_dir, tmp_path):
    """The --no-sandbox (debugging) path; tests/test_trace_sandbox.py runs the default, sandboxed one."""
    png = tmp_path / "timeline.png"
    out = tmp_path / "r.json"
    proc = _cli(str(EXAMPLES / "illegal_rescore"), "--data", str(val_dir), "--plot", str(png),
                "--format", "json", "--output", str(out), "--tokens", "64", "--no-sandbox")
    assert proc.returncode == 1, proc.stderr
    sub = json.loads(out.read_text())["submissions"][0]
    assert sub["verdict"] == "illegal"
    assert sub["measured"]["trace"]["val_tokens"] == 65
    rules = {(f["rule"], f["message"].startswith("[static]")) for f in sub["findings"]}
    assert ("TTT-NO-RESCORE", False) in rules and ("TTT-NO-RESCORE", True) in rules
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_is_a_message(tmp_path):
    proc = _cli(str(EXAMPLES / "legal_chunked"), "--data", str(tmp_path))
    assert proc.returncode == 2 and "no fineweb_val_" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli(str(tmp_path / "missing"), "--data", str(tmp_path))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    bad = tmp_path / "sub"
    bad.mkdir()
    (bad / "train_gpt.py").write_text("def main(:\n")
    (tmp_path / "fineweb_val_000000.bin").write_bytes(b"")
    proc = _cli(str(bad), "--data", str(tmp_path), "--no-static", "--format", "json", "--no-sandbox")
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)["submissions"][0]
    assert any(f["rule"] == "TRACE" and "SyntaxError" in f["message"] for f in report["findings"])


def test_setitem_into_a_buffer_carries_positions_and_untagged_backward_is_logged():
    log = EventLog()
    tok = tag_tokens(torch.arange(20) % 7)
    w = torch.randn(6, 7, requires_grad=True)
    with ProvenanceMode(log):
        y = torch.zeros(2, 6, dtype=torch.int64)
        y[1, :4] = tok[3:7]
        assert shadow(y).tolist() == [[-1] * 6, [3, 4, 5, 6, -1, -1]]
        F.cross_entropy(w, y[1]).backward()
        F.cross_entropy(w, torch.zeros(6, dtype=torch.int64)).backward()
    loss = [e for e in log.events if e["kind"] == "loss"]
    assert loss[0]["positions"] == [3, 4, 5, 6]
    assert [e["kind"] for e in log.events[-2:]] == ["train", "backward"]


def test_steps_between_the_matched_read_and_the_line_make_the_trace_incomplete():
    events = _events(
        {"kind": "val", "n": 5},
        {"kind": "loss", "positions": [1, 2, 3, 4]},
        {"kind": "read", "value": 1.25, "events": {"2": "all"}},
        {"kind": "step", "optimizer": "Adam"},                              # untracked TTT
        {"kind": "print", "text": "final val_loss:1.2500 val_bpb:1.8034"},
    )
    fs = verdict.findings(timeline.build(events), "t.py")
    assert [(f.rule, f.severity) for f in fs] == [("TRACE", "warning")] and "1 optimizer steps" in fs[0].message


def test_val_shards_read_directly_are_tagged_with_global_positions(val_dir, tmp_path, monkeypatch):
    """A submission that reads the val shards itself (like per-document LoRA TTT records) is traced too."""
    d = tmp_path / "data"
    d.mkdir()
    write_shard(d / "fineweb_val_000000.bin", np.arange(2, 12))
    write_shard(d / "fineweb_val_000001.bin", np.arange(12, 22))
    src = (EXAMPLES / "legal_chunked" / "train_gpt.py").read_text()
    src = src.replace("tokens = load_validation_tokens(h.val_files, h.seq_len)",
                      "tokens = torch.cat([load_data_shard(f) for f in sorted(glob.glob(h.val_files))])")
    script = tmp_path / "sub" / "train_gpt.py"
    script.parent.mkdir()
    script.write_text(src)
    monkeypatch.setenv("VAL_FILES", str(d / "fineweb_val_*.bin"))
    monkeypatch.setenv("TTT_CHUNK_TOKENS", "8")
    result = child.trace(script, None)
    shards = [e for e in result["events"] if e["kind"] == "val_shard"]
    assert [(e["file"], e["start"], e["n"]) for e in shards] == [
        ("fineweb_val_000000.bin", 0, 10), ("fineweb_val_000001.bin", 10, 10)]
    tl = timeline.build(result["events"])
    assert set(tl.reported_score) == set(range(1, 20))
    assert decide_verdict(verdict.findings(tl, "train_gpt.py", result["error"])) == "legal"


def test_codemod_turns_the_legal_example_illegal(val_dir, tmp_path, monkeypatch):
    from harness.trace.codemod import CodemodError, make_variant, train_before_score

    script = make_variant(EXAMPLES / "legal_chunked", tmp_path / "variant")
    monkeypatch.setenv("VAL_FILES", str(val_dir / "fineweb_val_*.bin"))
    result = child.trace(script, None)
    tl = timeline.build(result["events"])
    fs = verdict.findings(tl, "train_gpt.py", result["error"])
    assert {f.rule for f in fs if f.severity == "error"} == {"TTT-SCORE-FIRST"}
    # chunks of 32 from position 1; the last chunk (65..96) is scored untrained
    assert tl.trained_before_reported() == list(range(1, 65))
    with pytest.raises(CodemodError):
        train_before_score("def main():\n    for i in range(3):\n        print(i)\n")


def test_no_disagreement_is_claimed_when_the_static_check_did_not_run():
    runtime = [_f("TTT-NO-RESCORE", "error", "high")]
    assert combine(None, runtime, "t.py") == runtime
