"""`audit.py sweep` on a small repository built here: a base branch with one record, and PR heads that add a
legal folder, add an illegal one (also merged into the base), change the existing folder, or add none."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import ROOT

LEGAL = ROOT / "submissions" / "track_10min_16mb" / "2026-04-20_TinyGPT_ScoreFirstTTT"
TRACK = "records/track_10min_16mb"


def _illegal_script() -> str:
    from rules import rule_by_id

    return rule_by_id("TTT-SCORE-FIRST").ILLEGAL[0].files["train_gpt.py"]


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _add_legal(repo: Path, name: str) -> None:
    shutil.copytree(LEGAL, repo / TRACK / name)
    data = json.loads((repo / TRACK / name / "submission.json").read_text())
    data["date"] = name[:10]
    (repo / TRACK / name / "submission.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def queue_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("queue")
    _git(repo, "init", "-q", "-b", "main")
    _add_legal(repo, "2026-04-01_Base")
    (repo / "README.md").write_text("leaderboard\n")
    base = _commit(repo, "base record")
    heads = {}
    _git(repo, "checkout", "-q", "-b", "pr1", base)
    _add_legal(repo, "2026-04-10_AddsLegal")
    heads[1] = _commit(repo, "legal folder")
    _git(repo, "checkout", "-q", "-b", "pr2", base)
    illegal = repo / TRACK / "2026-04-11_AddsIllegal"
    shutil.copytree(LEGAL, illegal)
    (illegal / "train_gpt.py").write_text(_illegal_script())
    heads[2] = _commit(repo, "illegal folder")
    _git(repo, "checkout", "-q", "-b", "pr3", base)
    (repo / TRACK / "2026-04-01_Base" / "README.md").write_text("a changed description\n")
    heads[3] = _commit(repo, "change the base record")
    _git(repo, "checkout", "-q", "-b", "pr4", base)
    (repo / "README.md").write_text("leaderboard, edited\n")
    heads[4] = _commit(repo, "no records folder")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-ff", "-m", "merge pr2", "pr2")
    for number, sha in heads.items():
        _git(repo, "update-ref", f"refs/pull/{number}/head", sha)
    return repo


def _sweep(repo: Path, *args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "audit.py"), "sweep", str(repo), "--jobs", "1", *args],
                          capture_output=True, text=True, cwd=ROOT,
                          env={"GOLFAUDIT_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"})


def test_sweep_rows_verdicts_and_disagreement(queue_repo: Path, tmp_path: Path) -> None:
    done = _sweep(queue_repo, "--format", "json", cache=tmp_path / "c")
    assert done.returncode == 1, done.stderr      # PR 2 was merged and is illegal
    data = json.loads(done.stdout)
    assert data["schema"] == "golfaudit-sweep/1"
    rows = {(r["pr"], r["folder"]): r for r in data["rows"]}
    assert set(rows) == {(1, f"{TRACK}/2026-04-10_AddsLegal"), (2, f"{TRACK}/2026-04-11_AddsIllegal"),
                         (3, f"{TRACK}/2026-04-01_Base")}
    legal, illegal, changed = rows[(1, f"{TRACK}/2026-04-10_AddsLegal")], \
        rows[(2, f"{TRACK}/2026-04-11_AddsIllegal")], rows[(3, f"{TRACK}/2026-04-01_Base")]
    assert legal["verdict"] == "legal" and legal["merge_state"] == "unmerged" and legal["disagreement"] == ""
    assert illegal["verdict"] == "illegal" and illegal["merge_state"] == "merged"
    assert illegal["disagreement"] == "merged but illegal"
    assert illegal["deciding"]["rule"] == "TTT-SCORE-FIRST" and illegal["deciding"]["line"] == 34
    assert changed["verdict"] == "legal" and changed["merge_state"] == "unmerged"
    # the legal folder is compared with the base's record (dated before it), not with itself
    assert legal["versus"]["record"].endswith("2026-04-01_Base")
    assert legal["claimed_bpb"] == pytest.approx(sum(legal["seeds_bpb"]) / len(legal["seeds_bpb"]))
    assert data["counts"] == {"illegal": 1, "legal": 2}
    assert legal["scores_from"] == "log"
    assert data["disagreements"] == [{"pr": 2, "folder": f"{TRACK}/2026-04-11_AddsIllegal",
                                      "disagreement": "merged but illegal"}]


def test_sweep_states_file_and_range(queue_repo: Path, tmp_path: Path) -> None:
    states = tmp_path / "states.json"
    states.write_text(json.dumps({"1": "closed"}))
    done = _sweep(queue_repo, "--prs", "1", "--states", str(states), "--format", "json", cache=tmp_path / "c")
    data = json.loads(done.stdout)
    assert [r["pr"] for r in data["rows"]] == [1]
    assert data["rows"][0]["disagreement"] == "closed but legal"
    assert done.returncode == 1


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][-1] += data


def test_sweep_html_is_self_contained_and_holds_every_row(queue_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep.html"
    done = _sweep(queue_repo, "--format", "html", "--output", str(out), cache=tmp_path / "c")
    assert done.returncode == 1
    page = out.read_text()
    parser = _Cells()
    parser.feed(page)
    assert sorted(r[0] for r in parser.rows) == ["#1", "#2", "#3"]
    assert "http://" not in page and "https://" not in page and "<link" not in page and "src=" not in page


def test_sweep_rerun_is_served_from_the_cache(queue_repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    first = _sweep(queue_repo, "--format", "json", cache=cache)
    stored = sorted(p.name for p in cache.rglob("*.json"))
    second = _sweep(queue_repo, "--format", "json", cache=cache)
    assert sorted(p.name for p in cache.rglob("*.json")) == stored
    assert json.loads(first.stdout) == json.loads(second.stdout)


def test_sweep_markdown_and_usage_errors(queue_repo: Path, tmp_path: Path) -> None:
    done = _sweep(queue_repo, "--format", "markdown", cache=tmp_path / "c")
    assert "merged but illegal" in done.stdout and "| #1 |" in done.stdout
    assert _sweep(tmp_path, cache=tmp_path / "c").returncode == 2
    bad = _sweep(queue_repo, "--prs", "9-3", cache=tmp_path / "c")
    assert bad.returncode == 2 and "range ends before it starts" in bad.stderr
    assert _sweep(queue_repo, "--base", "nope", cache=tmp_path / "c").returncode == 2


def test_export_reports_missing_blobs_and_submodules(queue_repo: Path, tmp_path: Path) -> None:
    from harness.sweep.gitsource import export_folder

    sha = _git(queue_repo, "rev-parse", "refs/pull/1/head")
    clone = tmp_path / "partial"
    subprocess.run(["git", "clone", "-q", "--bare", str(queue_repo), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", str(queue_repo), f"{sha}:refs/pull/1/head"], check=True)
    log_blob = _git(queue_repo, "rev-parse", f"{sha}:{TRACK}/2026-04-10_AddsLegal/train_seed42.log")
    # drop that one blob from the clone, as a partial clone leaves large files out
    subprocess.run(["git", "-C", str(clone), "repack", "-a", "-d", "-q"], check=True)
    pack = next((clone / "objects" / "pack").glob("*.pack"))
    kept = subprocess.run(["git", "-C", str(clone), "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
                          capture_output=True, text=True, check=True).stdout.split()
    keep = "\n".join(o for o in kept if o != log_blob) + "\n"
    for old in (clone / "objects" / "pack").iterdir():
        old.unlink()
    del pack
    subprocess.run(["git", "-C", str(queue_repo), "pack-objects", "-q", str(clone / "objects" / "pack" / "p")],
                   input=keep, text=True, check=True, capture_output=True)
    problems = export_folder(clone, sha, f"{TRACK}/2026-04-10_AddsLegal", tmp_path / "out")
    assert [p.path for p in problems] == ["train_seed42.log"]
    assert "missing from this clone" in problems[0].message
    assert (tmp_path / "out" / "train_gpt.py").is_file()
