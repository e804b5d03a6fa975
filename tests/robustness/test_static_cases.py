"""Hostile folders through the real CLI: `audit.py check <case> good --format json` in a subprocess.

Each case asserts: no traceback, no hang, no crash; the exit code follows the CLI contract (1 when a
verdict is `error`/`illegal`, 2 for usage errors); the finding or error names the file; and the good
folder audited in the same batch still comes out `legal`. docs/security.md tabulates these cases.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.robustness.clihelp import (
    GOOD_LOG,
    GOOD_SCRIPT,
    assert_contract,
    assert_good_audited,
    case_folder,
    findings_about,
    good_folder,
    log_values,
    messages,
    permission_prefix,
    run_audit,
    run_check,
    write_folder,
)
from tests.robustness.hostile import deep_blocks, deep_expression, sparse_log


@pytest.fixture
def batch(tmp_path):
    """A working folder holding `good/`; cases are created beside it."""
    good_folder(tmp_path)
    return tmp_path


def check_pair(where, case: str = "case", **kwargs):
    run = run_check(where, case, "good", **kwargs)
    assert_contract(run)
    assert_good_audited(run)
    return run, run.sub(case)


def assert_unreadable(run, sub, file: str, *words: str) -> None:
    """The submission could not be audited: verdict `error`, gate fails (exit 1), the error names the file."""
    assert sub["verdict"] == "error", (sub["verdict"], messages(sub))
    assert run.rc == 1
    assert file in sub["error"], sub["error"]
    for word in words:
        assert word.lower() in sub["error"].lower(), sub["error"]
    assert sub["eligible"] is False


def assert_not_analysed(run, sub, *words: str) -> None:
    """No code could be analysed: never `legal`; CODE-ANALYSED says why, the code rules say "not checked"."""
    assert sub["verdict"] == "needs-review", (sub["verdict"], messages(sub))
    why = messages(sub, "CODE-ANALYSED")
    assert why and all(w.lower() in why[0].lower() for w in words), why
    assert sub["coverage"]["TTT-SCORE-FIRST"]["status"] == "not-checked"
    assert run.rc == 0                                   # needs-review is below the default --fail-on illegal


def parse_failures(sub) -> list[dict]:
    return [f for f in sub["findings"] if f["rule"] == "RECORDS-FOLDER" and f["severity"] == "error"
            and f["file"] == "train_gpt.py" and "does not parse" in f["message"]]


# -- source encodings -------------------------------------------------------------------------------------
def test_non_utf8_source_is_unreadable(batch):
    case_folder(batch, {"train_gpt.py": b"x = '\xe9t\xe9'\nprint(x)\n"})
    run, sub = check_pair(batch)
    assert_unreadable(run, sub, "train_gpt.py", "utf-8", "byte 5")


def test_pep263_coding_line_is_honoured(batch):
    case_folder(batch, {"train_gpt.py": "# -*- coding: latin-1 -*-\nx = 'été'\nprint(x)\n".encode("latin-1")})
    run, sub = check_pair(batch)
    assert sub["verdict"] == "legal" and run.rc == 0, messages(sub)
    assert not parse_failures(sub)


def test_utf8_bom_source_parses(batch):
    case_folder(batch, {"train_gpt.py": b"\xef\xbb\xbf" + GOOD_SCRIPT.encode()})
    run, sub = check_pair(batch)
    assert sub["verdict"] == "legal" and run.rc == 0, messages(sub)
    assert not parse_failures(sub)


def test_bom_contradicting_coding_line_is_unreadable(batch):
    case_folder(batch, {"train_gpt.py": b"\xef\xbb\xbf# coding: latin-1\nprint(1)\n"})
    run, sub = check_pair(batch)
    assert_unreadable(run, sub, "train_gpt.py", "encoding")


# -- syntax -----------------------------------------------------------------------------------------------
def test_syntax_error_is_reported_at_its_line(batch):
    case_folder(batch, {"train_gpt.py": "import os\n\ndef f(:\n    pass\n"})
    run, sub = check_pair(batch)
    failures = parse_failures(sub)
    assert failures and failures[0]["line"] == 3, messages(sub)
    assert_not_analysed(run, sub, "train_gpt.py", "line 3")
    gated = run_check(batch, "case", "good", extra=("--jobs", "1", "--fail-on", "needs-review"))
    assert gated.rc == 1 and gated.sub("good")["verdict"] == "legal"


def test_nul_byte_in_source_is_a_parse_failure(batch):
    case_folder(batch, {"train_gpt.py": b"import os\nx = 1\0\n"})
    run, sub = check_pair(batch)
    assert parse_failures(sub), messages(sub)
    assert_not_analysed(run, sub, "train_gpt.py")


def test_ten_megabyte_one_line_file(batch):
    blob = "A" * (10 * 1024 * 1024)
    case_folder(batch, {"train_gpt.py": f'BLOB = "{blob}"\nprint(len(BLOB))\n'})
    run, sub = check_pair(batch)
    assert sub["verdict"] == "legal", messages(sub)
    assert not parse_failures(sub)


def test_empty_train_gpt(batch):
    case_folder(batch, {"train_gpt.py": ""})
    run, sub = check_pair(batch)
    hits = [f for f in sub["findings"] if f["rule"] == "RECORDS-FOLDER" and f["severity"] == "error"
            and f["file"] == "train_gpt.py" and f["line"] == 1]
    assert hits and "empty" in hits[0]["message"], messages(sub)
    assert_not_analysed(run, sub, "train_gpt.py is empty")


# -- nesting: RecursionError / MemoryError are caught, never a crashed interpreter ------------------------
# (was an xfail: libcst's native parser overflowed the C stack after ast's 'too many nested' error;
# harness/parse.py no longer falls back to libcst there)


@pytest.mark.parametrize("kind", [
    "parens",
    "brackets",
    "braces",
    "calls",
    "unary",
    "binop",
    "attrs",
])
def test_100k_deep_expression(batch, kind):
    case_folder(batch, {"train_gpt.py": deep_expression(kind, 100_000)})
    run, sub = check_pair(batch)
    if kind in ("unary", "binop", "parens", "brackets", "braces", "calls"):
        assert parse_failures(sub), messages(sub)
        assert_not_analysed(run, sub, "train_gpt.py")
    else:  # parses; any detector that recursed too far says so (needs-review), never crashes
        assert sub["verdict"] in ("legal", "needs-review")


def test_indentation_nested_past_the_tokenizer_limit(batch):
    case_folder(batch, {"train_gpt.py": deep_blocks(1000)})
    run, sub = check_pair(batch)
    assert parse_failures(sub), messages(sub)
    assert_not_analysed(run, sub, "train_gpt.py")


# -- the folder itself ------------------------------------------------------------------------------------
def test_folder_missing_everything_is_not_a_submission(batch):
    (batch / "case").mkdir()
    run = run_check(batch, "case", "good")
    assert run.rc == 2 and run.report is None, run.stderr
    assert "case: holds no submission" in run.stderr and "submission.json" in run.stderr, run.stderr


def test_folder_with_only_a_readme_in_a_tree_is_skipped(batch):
    write_folder(batch / "tree" / "notes", {"README.md": "# notes\n"})
    shutil.copytree(batch / "good", batch / "tree" / "good")
    run = run_check(batch, "tree")
    assert_contract(run)
    assert [s["path"].rsplit("/", 1)[-1] for s in run.report["submissions"]] == ["good"]


def test_directory_named_train_gpt_py(batch):
    case_folder(batch, {"train_gpt.py": None, "train_gpt.py/inner.txt": "x\n"})
    run, sub = check_pair(batch)
    assert_unreadable(run, sub, "train_gpt.py", "directory")


PERMISSIONS = permission_prefix()
needs_permissions = pytest.mark.skipif(PERMISSIONS is None, reason="running as root without setpriv: chmod 000 "
                                       "does not stop root from reading")


@needs_permissions
def test_unreadable_script_chmod_000(batch):
    folder = case_folder(batch, {})
    (folder / "train_gpt.py").chmod(0)
    try:
        run, sub = check_pair(batch, prefix=PERMISSIONS)
        assert_unreadable(run, sub, "train_gpt.py", "cannot be read", "permission denied")
    finally:
        (folder / "train_gpt.py").chmod(0o644)


@needs_permissions
def test_unreadable_log_chmod_000_is_a_finding(batch):
    folder = case_folder(batch, {"train_seed2.log": GOOD_LOG})
    (folder / "train_seed2.log").chmod(0)
    try:
        run, sub = check_pair(batch, prefix=PERMISSIONS)
        assert sub["verdict"] != "error", sub.get("error")
        assert any("train_seed2.log" in m and "cannot be read" in m for m in messages(sub)), messages(sub)
    finally:
        (folder / "train_seed2.log").chmod(0o644)


@needs_permissions
def test_unreadable_folder_chmod_000(batch):
    folder = case_folder(batch, {})
    folder.chmod(0)
    try:
        run, sub = check_pair(batch, prefix=PERMISSIONS)
        assert sub["verdict"] == "error" and run.rc == 1 and "cannot be read" in sub["error"], sub
    finally:
        folder.chmod(0o755)


def test_fifo_named_train_log_does_not_hang(batch):
    folder = case_folder(batch, {})
    os.mkfifo(folder / "train.log")
    run, sub = check_pair(batch)
    about = findings_about(sub, "train.log", "error")
    assert about and "FIFO" in about[0]["message"], messages(sub)
    assert 1.2 in log_values(sub["measured"], "train_seed1.log")  # the real log was still read


def test_fifo_named_train_gpt_py_is_unreadable(batch):
    folder = case_folder(batch, {"train_gpt.py": None})
    os.mkfifo(folder / "train_gpt.py")
    run, sub = check_pair(batch)
    assert_unreadable(run, sub, "train_gpt.py", "FIFO")


def test_too_many_files(batch):
    folder = case_folder(batch, {})
    extra = folder / "many"
    extra.mkdir()
    for i in range(5001):
        (extra / f"f{i}.txt").write_bytes(b"")
    run, sub = check_pair(batch)
    assert sub["verdict"] == "error" and "5000" in sub["error"]


# -- symlinks: recorded, never followed ------------------------------------------------------------------
def test_symlinked_script_pointing_outside_is_not_followed(batch):
    outside = write_folder(batch / "outside", {"train_gpt.py": "def broken(:\n"})
    folder = case_folder(batch, {"train_gpt.py": None})
    (folder / "train_gpt.py").symlink_to(outside / "train_gpt.py")
    run, sub = check_pair(batch)
    warned = [f for f in sub["findings"] if f["file"] == "train_gpt.py" and "symbolic link" in f["message"]]
    assert warned, messages(sub)
    assert not parse_failures(sub)  # the outside file (a syntax error) was never read
    assert not any("broken" in f["evidence"] for f in sub["findings"])
    assert_not_analysed(run, sub, "train_gpt.py is a symbolic link")


def test_symlinked_log_and_folder_outside_are_not_read(batch):
    outside = write_folder(batch / "outside", {
        "secret.log": "final_int8_zlib_roundtrip_exact val_loss:9.0 val_bpb:9.87654321\n",
        "dir/train_seed7.log": "final_int8_zlib_roundtrip_exact val_loss:9.0 val_bpb:9.87654321\n"})
    folder = case_folder(batch, {})
    (folder / "train_seed2.log").symlink_to(outside / "secret.log")
    (folder / "logs").symlink_to(outside / "dir", target_is_directory=True)
    (folder / "loop.log").symlink_to(folder / "loop.log")
    run, sub = check_pair(batch)
    linked = {f["file"] for f in sub["findings"] if "symbolic link" in f["message"]}
    assert {"train_seed2.log", "logs", "loop.log"} <= linked, messages(sub)
    assert "9.87654321" not in run.stdout and "9.876" not in run.stdout


def test_exec_of_a_file_outside_the_folder_is_not_followed(batch):
    write_folder(batch / "outside", {"payload.py": "def broken(:\n"})
    case_folder(batch, {"train_gpt.py": "exec(open('../outside/payload.py').read())\n"
                                        "exec(open('/etc/hostname').read())\n"})
    run, sub = check_pair(batch)
    assert not [f for f in sub["findings"] if "does not parse" in f["message"]], messages(sub)
    assert not any(f["file"] and f["file"].startswith(("..", "/")) and f["line"] for f in sub["findings"])


# -- logs -------------------------------------------------------------------------------------------------
def test_huge_sparse_log_reads_head_and_tail(batch):
    folder = case_folder(batch, {"train_seed1.log": None})
    tail = "\nfinal_int8_zlib_roundtrip_exact val_loss:2.10000000 val_bpb:1.23456789\n"
    if not sparse_log(folder / "train_seed1.log", 4 * 1024 ** 3, tail):
        pytest.skip("this file system does not keep sparse files")
    run, sub = check_pair(batch)
    assert 1.23456789 in log_values(sub["measured"], "train_seed1.log"), sub["measured"]


def test_log_with_nul_bytes_and_invalid_utf8(batch):
    text = (b"\0" * 4096 + b"\xff\xfe garbage \xc3\x28\n" + b"final_int8_zlib_roundtrip_exact val_loss:2.0"
            b"\0\0 val_bpb:1.31\0\n" + b"\0" * 4096)
    case_folder(batch, {"train_seed1.log": text})
    run, sub = check_pair(batch)
    assert 1.31 in log_values(sub["measured"], "train_seed1.log"), sub["measured"]


# -- submission.json --------------------------------------------------------------------------------------
JSON_OWNER = "helper A (rules/submission_json.py): a broken submission.json must draw a finding naming it"


def _json_findings(sub) -> list[dict]:
    return [f for f in sub["findings"] if f["severity"] in ("error", "warning")
            and (f["file"] == "submission.json" or "submission.json" in f["message"])
            and "missing" not in f["message"]]


@pytest.mark.parametrize("content, words", [
    pytest.param('{"name": "x", "val_bpb": 1.2,,}\n', ("line 1", "column"), id="malformed"),
    pytest.param("[" * 100_000 + "]" * 100_000, ("nested",), id="nested-100k"),
    pytest.param('{"name": "x", "notes": "' + "n" * (5 * 1024 * 1024) + '"}', ("limit",), id="huge-5MB"),
    pytest.param("[1, 2, 3]\n", ("not an object",), id="not-an-object"),
    pytest.param(b'{"name": "\xe9"}\n', ("utf-8",), id="not-utf8"),
])
def test_broken_submission_json_is_named(batch, content, words):
    case_folder(batch, {"submission.json": content})
    run, sub = check_pair(batch)
    found = _json_findings(sub)
    assert found, messages(sub)
    assert all(w.lower() in " ".join(f["message"] for f in found).lower() for w in words), messages(sub)


# -- usage errors -----------------------------------------------------------------------------------------
def test_missing_path_is_a_usage_error(batch):
    run = run_check(batch, "no-such-folder", "good")
    assert run.rc == 2 and "no-such-folder" in run.stderr and not run.stdout


def test_zero_jobs_is_a_usage_error(batch):
    run = run_check(batch, "good", extra=("--jobs", "0"))
    assert run.rc == 2 and "--jobs" in run.stderr and not run.stdout


def test_unwritable_output_is_a_clear_error(batch):
    (batch / "plainfile").write_text("x")
    run = run_check(batch, "good", extra=("--jobs", "1", "--output", "plainfile/report.json"))
    assert run.rc == 2 and "plainfile/report.json" in run.stderr, run.stderr
    assert "internal error" not in run.stderr


def test_fifo_given_as_the_path(batch):
    os.mkfifo(batch / "case")
    run = run_check(batch, "case", "good")          # never opened: no hang
    assert run.rc == 2 and "case: not a submission" in run.stderr, run.stderr
    os.mkfifo(batch / "train_gpt.py")               # a FIFO named like a script is audited, and unreadable
    run = run_check(batch, "train_gpt.py", "good")
    assert_contract(run)
    assert run.sub("train_gpt.py")["verdict"] == "error" and run.rc == 1


def test_log_only_folder_is_audited(batch):
    write_folder(batch / "case", {"train_seed3.log": GOOD_LOG})
    run, sub = check_pair(batch)
    assert any("no training script" in m for m in messages(sub, "RECORDS-FOLDER")), messages(sub)
    assert_not_analysed(run, sub, "no training script")
    assert 1.2 in log_values(sub["measured"], "train_seed3.log")     # the log was still read


# -- packed code: bombs and deep packing are stopped by caps, never followed into gigabytes ----------------
CODE_PROBLEMS_OWNER = ("helper C (code rules over harness.codeload): a CodeProblem (bomb, nesting cap, exec of "
                       "a file outside the folder) must surface in `check` as a finding naming the file and "
                       "line, so the submission is never a silent `legal`")


def _code_problem_findings(sub, *words: str) -> list[dict]:
    return [f for f in sub["findings"] if f["severity"] in ("error", "warning") and f["file"]
            and f["file"].startswith("train_gpt.py") and all(w in f["message"].lower() for w in words)]


@pytest.fixture(scope="module")
def bomb_batch(tmp_path_factory):
    from tests.robustness.hostile import bomb_script

    where = tmp_path_factory.mktemp("bomb")
    good_folder(where)
    case_folder(where, {"train_gpt.py": bomb_script(128)})  # ~800 KB of source, 4 GiB when decompressed
    return where


@pytest.fixture(scope="module")
def bomb_run(bomb_batch):
    """One `check` of the bomb beside a good folder (shared: while the bomb is followed it is slow)."""
    try:
        run = run_check(bomb_batch, "case", "good", extra=("--jobs", "1", "--no-cache"), timeout=600)
    except AssertionError as exc:
        return None, str(exc)
    return run, ""


def test_decompression_bomb_is_capped(bomb_run):
    run, why = bomb_run
    assert run is not None, why
    assert_contract(run)
    assert_good_audited(run)
    sub = run.sub("case")
    assert not [m for m in messages(sub) if "internal error" in m or "MemoryError" in m], messages(sub)


def test_decompression_bomb_unpack_command_names_it(bomb_batch):
    run = run_unpack(bomb_batch, "case/train_gpt.py")
    assert run.returncode == 1 and "train_gpt.py" in run.stderr and "bomb" in run.stderr, run.stderr


def test_decompression_bomb_draws_a_finding(bomb_run):
    run, why = bomb_run
    assert run is not None, why
    sub = run.sub("case")
    assert sub["verdict"] in ("needs-review", "illegal")
    assert _code_problem_findings(sub, "bomb") or _code_problem_findings(sub, "decompress")


@pytest.fixture
def nested_batch(batch):
    from tests.robustness.hostile import nested_packed_script

    case_folder(batch, {"train_gpt.py": nested_packed_script(50)})
    return batch


def test_packing_nested_50_deep_is_capped(nested_batch):
    run, sub = check_pair(nested_batch)
    assert sub["path"] == "case"
    unpack = run_unpack(nested_batch, "case/train_gpt.py")
    assert unpack.returncode == 1 and "nested" in unpack.stderr and "train_gpt.py" in unpack.stderr


def test_packing_nested_50_deep_draws_a_finding(nested_batch):
    run, sub = check_pair(nested_batch)
    assert sub["verdict"] in ("needs-review", "illegal")
    assert _code_problem_findings(sub, "nested")


def test_exec_of_a_file_outside_the_folder_draws_a_finding(batch):
    write_folder(batch / "outside", {"payload.py": "print('outside')\n"})
    case_folder(batch, {"train_gpt.py": "exec(open('../outside/payload.py').read())\n"})
    run, sub = check_pair(batch)
    found = _code_problem_findings(sub, "outside")
    assert found and found[0]["line"] == 1, messages(sub)


def run_unpack(cwd, path: str):
    return run_audit(cwd, ["unpack", path], timeout=60)


def test_unknown_format_is_a_usage_error(batch):
    run = run_audit(batch, ["check", "good", "--format", "nope"])
    assert run.returncode == 2 and "--format" in run.stderr and not run.stdout


PATHOLOGICAL_LOGS = {"one-line": lambda n: "step:1/2 " * (n // 9), "newlines": lambda n: "\n" * n}


@pytest.mark.parametrize("kind", sorted(PATHOLOGICAL_LOGS))
def test_pathological_log_is_parsed(batch, kind):
    case_folder(batch, {"train_seed2.log": PATHOLOGICAL_LOGS[kind](1024 * 1024) + "\n" + GOOD_LOG})
    run, sub = check_pair(batch)
    assert 1.2 in log_values(sub["measured"], "train_seed2.log")


def test_log_parse_of_many_matching_lines_is_correct():
    from harness.logs import parse_log_text

    body = "".join(f"step:{i}/100000 train_loss:2.5 train_time:{i * 10}ms step_avg:10.0ms\n" for i in range(1, 100_001))
    log = parse_log_text("\n" * 50_000 + body + "stopping_early: wallclock_cap train_time:1000000ms step:100000/100000\n"
                         + "final_int8_zlib_roundtrip val_loss:2.0 val_bpb:1.25\n", "train.log")
    assert log.last_step_time_ms.value == 1_000_000 and log.last_step_time_ms.line == 150_000
    assert log.stop_step == 100_000 and log.train_time_ms.line == 150_001
    assert log.final.value == 1.25 and log.final.line == 150_002


def test_undecodable_file_and_folder_names(batch):
    folder = case_folder(batch, {}, name="case")
    (folder / "train_seed9\udcff.log").write_text("final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.25\n")
    os.symlink("/etc/passwd", folder / "link\udcfe.log")
    odd = case_folder(batch, {}, name="odd\udcffdir")
    assert odd.is_dir()
    run = run_check(batch, "case", "odd\udcffdir", "good", env={"PYTHONIOENCODING": "utf-8:strict"},
                    extra=("--jobs", "1", "--output", "report.json"))
    assert run.rc == 0, run.stderr
    text = (batch / "report.json").read_bytes().decode("utf-8")   # valid UTF-8, whatever the names
    assert "odd\\\\xffdir" in text and "link\\\\xfe.log" in text
    sub = json.loads(text)["submissions"]
    case = next(s for s in sub if s["path"] == "case")
    assert 1.25 in log_values(case["measured"], "train_seed9\\xff.log")
