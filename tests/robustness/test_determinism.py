"""The report of a batch is byte-identical across runs, worker counts and cache states."""

from __future__ import annotations

import os

import pytest

from tests.conftest import pg_repo, requires_pg_repo
from tests.robustness.clihelp import assert_contract, case_folder, good_folder, run_check, write_folder


@pytest.fixture(scope="module")
def mixed_batch(tmp_path_factory):
    """A tree of records folders: good, broken and hostile ones, in one batch."""
    root = tmp_path_factory.mktemp("determinism")
    tree = root / "records" / "track_10min_16mb"
    good_folder(tree, "2026-04-20_Good")
    case_folder(tree, {"train_gpt.py": "def f(:\n"}, "2026-04-21_Syntax")
    case_folder(tree, {"train_gpt.py": b"x = '\xe9'\n"}, "2026-04-22_Latin1")
    case_folder(tree, {"submission.json": '{"name": 1,,}'}, "2026-04-23_BadJson")
    case_folder(tree, {"train_gpt.py": "x = " + "-" * 50_000 + "1\n"}, "2026-04-24_Deep")
    fifo = case_folder(tree, {}, "2026-04-25_Fifo")
    os.mkfifo(fifo / "train.log")
    link = case_folder(tree, {}, "2026-04-26_Link")
    (link / "other.log").symlink_to(tree / "2026-04-20_Good" / "train_seed1.log")
    write_folder(tree / "2026-04-27_Empty", {"README.md": "# nothing\n"})
    return root


def _report(root, jobs: str, cache: str | None = None) -> str:
    extra = ["--jobs", jobs] + (["--no-cache"] if cache is None else [])
    run = run_check(root, "records", extra=extra, env={"GOLFAUDIT_CACHE_DIR": cache} if cache else None)
    assert_contract(run)
    names = [sub["path"].rsplit("/", 1)[-1] for sub in run.report["submissions"]]
    # a folder with no script, submission.json or log inside a tree is not a records folder
    assert names == [f"2026-04-{day}" for day in ("20_Good", "21_Syntax", "22_Latin1", "23_BadJson",
                                                   "24_Deep", "25_Fifo", "26_Link")]
    return run.stdout


def test_json_report_is_byte_identical_across_runs_and_jobs(mixed_batch, tmp_path):
    first = _report(mixed_batch, "1")
    assert _report(mixed_batch, "1") == first
    assert _report(mixed_batch, "2") == first
    cache = str(tmp_path / "cache")
    assert _report(mixed_batch, "2", cache=cache) == first   # cold cache, parallel
    assert _report(mixed_batch, "1", cache=cache) == first   # warm cache


def test_text_report_is_identical_with_one_or_two_jobs(mixed_batch):
    one = run_check(mixed_batch, "records", extra=("--jobs", "1", "--no-cache"), fmt="text")
    two = run_check(mixed_batch, "records", extra=("--jobs", "2", "--no-cache"), fmt="text")
    assert one.rc == two.rc == 1
    assert one.stdout == two.stdout and one.stdout


@requires_pg_repo
def test_real_records_report_is_identical_with_one_or_two_jobs(tmp_path):
    """A few real records folders (PG_REPO): same bytes with one or two workers, none unreadable."""
    folders = sorted(p for p in (pg_repo() / "records" / "track_10min_16mb").iterdir() if p.is_dir())[:4]
    one = run_check(tmp_path, *folders, extra=("--jobs", "1", "--no-cache"), timeout=300)
    two = run_check(tmp_path, *folders, extra=("--jobs", "2", "--no-cache"), timeout=300)
    assert_contract(one)
    assert one.stdout == two.stdout
    assert len(one.report["submissions"]) == 4
    assert not [s["path"] for s in one.report["submissions"] if s["verdict"] == "error"]


GARBAGE = ["not json{", "[]", '{"path": 1}',
           '{"path": "x", "verdict": "legal", "findings": [{"rule": 1}], "claims": {}, "measured": {}}']


def test_damaged_cache_entries_are_misses(mixed_batch, tmp_path):
    cache = tmp_path / "cache"
    first = _report(mixed_batch, "1", cache=str(cache))
    entries = list(cache.rglob("*.json"))
    assert entries
    for garbage in GARBAGE:
        for entry in entries:
            entry.write_text(garbage)
        assert _report(mixed_batch, "1", cache=str(cache)) == first, garbage
