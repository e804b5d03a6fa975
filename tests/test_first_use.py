"""What a new user meets first: inputs that are not submissions, the exit-code table, the text report in a
pipe, the one-line headline per folder, and Markdown that fits a PR comment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.ci_context import pull_request_context
from harness.commands._common import EXIT_CODES
from harness.display import short_label
from harness.formats import render
from harness.formats.headline import grouped
from harness.progress import BatchProgress
from harness.report import Finding, Report, deciding_finding, judge, reading_order
from tests.conftest import pg_repo, requires_pg_repo

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "submissions"
COMMENT_LIMIT = 65536


def audit(*args: str, cwd: Path = ROOT, env: dict | None = None, cache: Path | None = None):
    environ = {**os.environ, "GOLFAUDIT_CACHE_DIR": str(cache or ROOT / ".golfaudit-cache"), **(env or {})}
    environ.pop("COLUMNS", None) if env is None or "COLUMNS" not in env else None
    return subprocess.run([sys.executable, str(ROOT / "audit.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=environ)


def _f(rule, severity, confidence, file, line, message, category="legality") -> Finding:
    return Finding(rule=rule, category=category, severity=severity, confidence=confidence, file=file, line=line,
                   message=message, citation="README", source_weight="README")


# -- inputs -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", ["readme", "log", "empty_folder", "other_tools"])
def test_a_path_that_is_not_a_submission_is_a_usage_error(tmp_path, make):
    if make == "readme":
        target = tmp_path / "README.md"
        target.write_text("# notes\n")
    elif make == "log":
        target = tmp_path / "run.log"
        target.write_text("final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n")
    elif make == "empty_folder":
        target = tmp_path / "empty"
        target.mkdir()
    else:   # another tool's scratch folder: logs and notes, no training script or submission.json
        target = tmp_path / "scratch"
        (target / "sub").mkdir(parents=True)
        (target / "pytest.log").write_text("x\n")
        (target / "sub" / "notes.txt").write_text("x\n")
    done = audit("check", str(target), "--format", "json", cache=tmp_path / "cache")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "not a submission" in done.stderr or "holds no submission" in done.stderr
    assert "train_gpt.py" in done.stderr and "submission.json" in done.stderr      # names what was expected
    assert "Traceback" not in done.stderr


def test_run_and_trace_refuse_a_file_and_unpack_a_non_python_file(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("x\n")
    for command in ("run", "trace"):
        done = audit(command, str(EXAMPLES / "track_10min_16mb" / "2026-04-21_Oversize" / "README.md"),
                     "--data", str(tmp_path), "--tokenizer", str(log))
        assert done.returncode == 2 and "not a folder" in done.stderr, (command, done.stderr)
    done = audit("unpack", str(log))
    assert done.returncode == 2 and "not a Python script" in done.stderr


def test_every_help_prints_the_one_exit_code_table():
    commands = ["check", "unpack", "run", "eval", "trace"]
    for args in ([], *[[c] for c in commands]):
        done = audit(*args, "--help")
        assert done.returncode == 0, args
        assert EXIT_CODES in done.stdout, args
    codes = [line.split()[0] for line in EXIT_CODES.splitlines()[1:] if not line.startswith("         ")]
    assert codes == ["0", "1", "2", "128+N"]


# -- the text report in a pipe ----------------------------------------------------------------------------
def test_piped_text_keeps_each_message_on_one_line(tmp_path):
    done = audit("check", str(EXAMPLES), cache=tmp_path / "cache")
    report = json.loads(audit("check", str(EXAMPLES), "--format", "json", cache=tmp_path / "cache").stdout)
    assert done.returncode == 1
    messages = [f["message"] for s in report["submissions"] for f in s["findings"] if f["severity"] != "info"]
    assert len(max(messages, key=len)) > 160     # long enough that a wrapping report would break it
    lines = done.stdout.splitlines()
    for message in messages:
        assert any(message in line for line in lines), message
    assert str(ROOT) not in done.stdout          # paths are relative
    assert "golfaudit: audited 7/7" in done.stderr and "audited" not in done.stdout


def test_terminal_width_follows_columns():
    report = Report("golfaudit", "0", "t", (judge("records/x/" + "y" * 150, "10min-16mb", [], {}, {}),))
    narrow = render(report, "text", width=80)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    wide = render(report, "text", width=None)
    assert any(("y" * 150) in line for line in wide.splitlines())


def test_headline_names_the_deciding_finding_first(tmp_path):
    findings = [
        _f("SUBMISSION-JSON", "warning", "high", "submission.json", 2, "name missing", category="hygiene"),
        _f("TTT-NO-RESCORE", "error", "low", "train_gpt.py", 50, "second pass"),
        _f("SLOT", "error", "high", "train_gpt.py", 883, "optimises `delta` on the scored targets"),
        _f("ETLB", "error", "high", "train_gpt.py", 883, "fits a logit bias on the scored targets"),
        _f("TTT-SCORE-FIRST", "error", "medium", "train_gpt.py", 40, "trains before scoring"),
    ]
    sub = judge("records/track_10min_16mb/2026-04-06_X", "10min-16mb", findings, {"val_bpb": 1.1},
                {"val_bpb_mean": {"value": 1.2, "source": "log"}})
    assert sub.verdict == "illegal"
    decider = deciding_finding(sub)
    assert decider is not None and decider.confidence == "high" and decider.line == 883
    assert reading_order(sub)[0] is decider
    groups = grouped(sub)
    assert groups[0].rules == [decider.rule, "SLOT" if decider.rule == "ETLB" else "ETLB"]
    text = render(Report("golfaudit", "0", "t", (sub,)), "text")
    head = next(line for line in text.splitlines() if line.startswith("illegal"))
    assert "1.1 → 1.2 (log)" in head and f"{decider.rule} train_gpt.py:883" in head and head.endswith("2026-04-06_X")
    merged = next(line for line in text.splitlines() if ":883" in line and "  " in line and "+" in line)
    assert "ETLB+SLOT" in merged or "SLOT+ETLB" in merged
    assert text.index(":883") < text.index(":40  ") < text.index(":50  ")


def test_legal_eligible_has_no_decider_and_ineligible_names_the_rule():
    ok = judge("r/a", "10min-16mb", [_f("SUBMISSION-JSON", "warning", "high", None, None, "w", "hygiene")], {}, {})
    assert ok.verdict == "legal" and deciding_finding(ok) is None
    seeds = _f("SEEDS-3-SAME-CONFIG", "error", "high", None, None, "1 seed", category="eligibility")
    bad = judge("r/b", "10min-16mb", [seeds], {}, {})
    assert bad.verdict == "legal" and bad.eligible is False and deciding_finding(bad) == seeds


def test_reproduced_and_decoy_scores_are_labelled():
    evald = judge("r/a", "10min-16mb", [], {"val_bpb": 1.1}, {"val_bpb_mean": {"value": 1.3, "source": "reproduced"}})
    ran = judge("r/b", "10min-16mb", [], {}, {"run": {"decoy_val_bpb": {"value": 5.9, "source": "reproduced"}}})
    text = render(Report("golfaudit", "0", "t", (evald, ran)), "text")
    assert "1.1 → 1.3 (reproduced)" in text and "— → 5.9 (decoy run)" in text


def test_labels_are_relative_to_the_git_root_or_the_given_folder(tmp_path):
    repo = tmp_path / "clone"
    (repo / ".git").mkdir(parents=True)
    inside = repo / "records" / "track_10min_16mb" / "2026-04-01_A"
    assert short_label(str(inside)) == "records/track_10min_16mb/2026-04-01_A"
    loose = tmp_path / "batch" / "one"
    assert short_label(str(loose), [tmp_path / "batch"]) == "batch/one"
    assert short_label("submissions/x") == "submissions/x"


def test_progress_prints_a_line_every_n_in_a_pipe(capsys):
    import io

    stream = io.StringIO()
    progress = BatchProgress("audited", stream=stream, every=10, terminal=False)
    for done in range(1, 24):
        progress(done, 23, f"f{done}")
    assert stream.getvalue().splitlines() == ["golfaudit: audited 10/23", "golfaudit: audited 20/23",
                                              "golfaudit: audited 23/23"]


# -- Markdown for a PR comment ----------------------------------------------------------------------------
def _synthetic_batch(root: Path, n: int) -> Path:
    kinds = sorted(p for p in EXAMPLES.glob("*/*") if p.is_dir())
    for i in range(n):
        src = kinds[i % len(kinds)]
        shutil.copytree(src, root / "records" / src.parent.name / f"{src.name}_{i:02d}")
    return root / "records"


def test_markdown_of_sixty_folders_fits_a_comment_and_one_folder_fits_8kb(tmp_path):
    records = _synthetic_batch(tmp_path, 60)
    done = audit("check", str(records), "--format", "markdown", "--no-progress", cache=tmp_path / "cache")
    assert done.returncode == 1, done.stderr
    assert len(done.stdout) < COMMENT_LIMIT
    assert done.stdout.count("\n| ") >= 61           # every folder has its headline row
    assert str(tmp_path) not in done.stdout
    one = next(records.glob("*/*Oversize*"))
    single = audit("check", str(one), "--format", "markdown", cache=tmp_path / "cache")
    assert len(single.stdout.encode("utf-8")) < 8192
    row = next(line for line in single.stdout.splitlines() if line.startswith("| ❌ |"))
    assert "SIZE-CAP-16MB" in row and "train_seed1337.log:20" in row     # the headline row names the decider


@requires_pg_repo
def test_markdown_of_the_merged_records_fits_a_comment(tmp_path):
    records = pg_repo() / "records"
    done = audit("check", str(records), "--format", "markdown", "--no-progress")
    assert len(done.stdout) < COMMENT_LIMIT
    assert "`records/track_10min_16mb/" in done.stdout            # repo-relative, linkable paths
    for folder in sorted(records.glob("*/*"))[:60]:
        one = audit("check", str(folder), "--format", "markdown")
        assert len(one.stdout.encode("utf-8")) < 8192, folder


def test_pull_request_context_from_github_actions(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 1812, "head": {"sha": "ab" * 20}}}))
    env = {"GITHUB_EVENT_PATH": str(event), "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "openai/parameter-golf", "GITHUB_RUN_ID": "42"}
    pr = pull_request_context(env)
    assert pr == {"number": "1812", "head_sha": "ab" * 20, "repo_url": "https://github.com/openai/parameter-golf",
                  "run_url": "https://github.com/openai/parameter-golf/actions/runs/42"}
    assert pull_request_context({"GITHUB_REF": "refs/pull/7/merge"}, head="cd" * 20) == {"number": "7",
                                                                                        "head_sha": "cd" * 20}
    sub = judge("records/a/b", "10min-16mb", [], {}, {})
    text = render(Report("golfaudit", "0", "t", (sub,)), "markdown", pull_request=pr, ref=pr["head_sha"])
    assert "PR #1812" in text and "head `abababababab`" in text


# -- the record to beat, found in the clone ----------------------------------------------------------------
def _clone_with_records(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    track = root / "records" / "track_10min_16mb"
    for name, source, date in (("2026-04-01_Oversize", "2026-04-21_Oversize", "2026-04-01"),
                               ("2026-04-10_Tiny", "2026-04-20_TinyGPT_ScoreFirstTTT", "2026-04-10"),
                               ("2026-04-20_Next", "2026-04-20_TinyGPT_ScoreFirstTTT", "2026-04-20")):
        folder = track / name
        shutil.copytree(EXAMPLES / "track_10min_16mb" / source, folder)
        data = json.loads((folder / "submission.json").read_text())
        (folder / "submission.json").write_text(json.dumps({**data, "date": date}))
    return track


def test_sota_is_the_best_legal_record_before_the_folder(tmp_path):
    track = _clone_with_records(tmp_path / "clone")
    done = audit("check", str(track / "2026-04-20_Next"), "--format", "json", cache=tmp_path / "cache")
    # the illegal (oversize) record cannot be the one to beat; the legal one before the folder is
    assert "tested against records/track_10min_16mb/2026-04-10_Tiny" in done.stderr, done.stderr
    sig = [f for f in json.loads(done.stdout)["submissions"][0]["findings"] if f["rule"] == "SIG-0.005-NATS"]
    assert sig and "vs 2026-04-10_Tiny" in sig[0]["message"] and sig[0]["severity"] == "error"
    first = audit("check", str(track / "2026-04-10_Tiny"), "--format", "json", cache=tmp_path / "cache")
    assert "tested against" not in first.stderr              # nothing legal before it
    off = audit("check", str(track / "2026-04-20_Next"), "--format", "json", "--sota", "none",
                cache=tmp_path / "cache")
    assert "tested against" not in off.stderr
    sig = [f for f in json.loads(off.stdout)["submissions"][0]["findings"] if f["rule"] == "SIG-0.005-NATS"]
    assert sig and "not checked" in sig[0]["message"]


def test_eval_progress_prints_lines_in_a_pipe(capsys):
    pytest.importorskip("torch")
    from harness.evaluate.sliding import progress_bar

    advance, close = progress_bar(100, "windows", enabled=True)     # stderr is captured: not a terminal
    for _ in range(25):
        advance(4)
    close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "golfaudit: windows 12/100" and lines[-1] == "golfaudit: windows 100/100" and len(lines) == 10


def test_write_shard_takes_a_str_path(tmp_path):
    from harness.data.shards import read_shard, write_shard

    target = str(tmp_path / "sub" / "fineweb_val_000000.bin")
    assert write_shard(target, [1, 2, 3]) == 3
    assert list(read_shard(Path(target))) == [1, 2, 3]


def test_a_tiny_tokenizer_of_64_pieces_trains(tmp_path):
    pytest.importorskip("sentencepiece")
    from harness.data.build import main

    assert main(["--train-tiny-tokenizer", "64", "--out", str(tmp_path), "--train-tokens", "2000",
                 "--val-tokens", "500"]) == 0
    assert (tmp_path / "datasets" / "fineweb10B_sp64" / "fineweb_val_000000.bin").is_file()
    assert main(["--train-tiny-tokenizer", "5", "--out", str(tmp_path / "x")]) == 2      # a message, no traceback
