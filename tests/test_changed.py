"""`check --changed-since REF` on a fixture repository built with real git (no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.changed import ChangedError, changes_since, records_folder_of
from harness.rule_examples import materialise

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GOOD_JSON = '{"name": "x", "author": "a", "github_id": "a", "val_bpb": 1.2}\n'
GOOD_LOG = "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n"
A = "records/track_10min_16mb/2026-04-10_BranchRecord"
B = "records/track_10min_16mb/2026-04-11_MainRecordLater"
OLD = "records/track_10min_16mb/2026-03-17_Old"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def add_folder(repo: Path, rel: str, script: str = "print('hi')\n") -> None:
    folder = repo / rel
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_gpt.py").write_text(script, encoding="utf-8")
    (folder / "README.md").write_text("# r\n", encoding="utf-8")
    (folder / "submission.json").write_text(GOOD_JSON, encoding="utf-8")
    (folder / "train.log").write_text(GOOD_LOG, encoding="utf-8")


@pytest.fixture
def repo(tmp_path) -> Path:
    """main: an old record; branch `pr` forks, adds folder A; then main moves on and adds folder B."""
    repo = tmp_path / "pg"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# parameter golf\n", encoding="utf-8")
    add_folder(repo, OLD)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    add_folder(repo, A)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "record A")
    git(repo, "checkout", "-q", "main")
    add_folder(repo, B, script="def broken(:\n")
    (repo / "README.md").write_text("# parameter golf\n\nnew leaderboard row\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "record B lands on main")
    git(repo, "checkout", "-q", "pr")            # the branch is now behind its base
    return repo


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "audit.py"), "check", *args, "--no-cache", "-j", "1"],
                          cwd=cwd, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_records_folder_of():
    assert records_folder_of(f"{A}/train_gpt.py") == A
    assert records_folder_of(f"{A}/sub/dir/x.py") == A
    assert records_folder_of("records/track_10min_16mb/README.md") is None
    assert records_folder_of("README.md") is None


def test_branch_behind_its_base_audits_only_its_own_folder(repo):
    change = changes_since("main", repo)
    assert change.folders == (A,) and change.outside == () and change.existing == () and not change.problems()
    done = cli(repo, "--changed-since", "main", "--format", "json")
    data = json.loads(done.stdout)
    assert [s["path"] for s in data["submissions"]] == [A]
    assert not [f for f in data["submissions"][0]["findings"] if f["rule"] == "RECORDS-FOLDER"]
    assert done.returncode == 0
    # the naive two-dot diff would have dragged in main's folder B (with its broken script) and README.md
    two_dot = git(repo, "diff", "--name-only", "main..HEAD")
    assert B in two_dot and "README.md\n" in two_dot


def test_change_outside_the_new_folder_is_a_records_folder_finding(repo):
    (repo / "README.md").write_text("# parameter golf (edited by the PR)\n", encoding="utf-8")
    (repo / OLD / "train_gpt.py").write_text("print('tampered')\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "touch more")
    change = changes_since("main", repo)
    assert change.outside == ("README.md",) and change.existing == (OLD,)
    assert set(change.folders) == {A, OLD}
    data = json.loads(cli(repo, "--changed-since", "main", "--format", "json").stdout)
    assert sorted(s["path"] for s in data["submissions"]) == sorted([A, OLD])
    for sub in data["submissions"]:
        msgs = [f["message"] for f in sub["findings"] if f["rule"] == "RECORDS-FOLDER"]
        assert any("changes outside a records folder: README.md" in m for m in msgs)
        assert any("touches 2 records folders" in m for m in msgs)
        assert any(f"already existed at the merge-base: {OLD}" in m for m in msgs)
        f = next(f for f in sub["findings"] if f["rule"] == "RECORDS-FOLDER" and "outside" in f["message"])
        assert f["category"] == "hygiene" and f["severity"] == "error"
        assert sub["verdict"] == "legal"     # hygiene never changes the verdict


def test_change_with_no_records_folder(repo):
    git(repo, "checkout", "-q", "-b", "docs", "main")
    (repo / "train_gpt.py").write_text("print('root script changed')\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "root only")
    done = cli(repo, "--changed-since", "main", "--format", "json")
    (sub,) = json.loads(done.stdout)["submissions"]
    assert sub["path"] == "." and sub["eligible"] is None
    assert any("changes outside a records folder: train_gpt.py" in f["message"] for f in sub["findings"])
    md = cli(repo, "--changed-since", "main", "--format", "markdown").stdout
    assert "RECORDS-FOLDER" in md and "train_gpt.py" in md


def test_deleted_and_renamed_folders_are_seen(repo):
    git(repo, "mv", OLD, "records/track_10min_16mb/2026-04-12_Renamed")
    git(repo, "commit", "-q", "-m", "rename an old record")
    change = changes_since("main", repo)
    assert OLD in change.deleted and "records/track_10min_16mb/2026-04-12_Renamed" in change.folders
    assert any("deletes records folder(s)" in p for p in change.problems())


def test_path_narrows_the_change(repo):
    (repo / OLD / "notes.md").write_text("x\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "note")
    data = json.loads(cli(repo, A, "--changed-since", "main", "--format", "json").stdout)
    assert [s["path"] for s in data["submissions"]] == [A]


def test_bad_refs_and_non_repositories_are_usage_errors(repo, tmp_path):
    done = cli(repo, "--changed-since", "no-such-branch")
    assert done.returncode == 2 and "--changed-since" in done.stderr and "no-such-branch" in done.stderr
    with pytest.raises(ChangedError):
        changes_since("--output=x", repo)
    outside = tmp_path / "plain"
    outside.mkdir()
    done = cli(outside, "--changed-since", "main")
    assert done.returncode == 2 and "git" in done.stderr
    assert cli(repo).returncode == 2          # neither PATH nor --changed-since


# -- the example GitHub workflow --------------------------------------------------------------------------------
WORKFLOW = ROOT / "examples" / "github-workflow.yml"


def _workflow() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_workflow_is_read_only_pull_request():
    flow = _workflow()
    triggers = flow.get("on", flow.get(True))        # YAML 1.1 reads a bare `on` key as True
    assert set(triggers) == {"pull_request"}
    assert flow["permissions"] == {"contents": "read"}
    audit = flow["jobs"]["audit"]
    assert all(v in ("read", "none") for v in audit["permissions"].values())
    checkout = next(s for s in audit["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0 and checkout["with"]["persist-credentials"] is False
    scanning = flow["jobs"]["code-scanning"]
    assert scanning["permissions"]["security-events"] == "write"
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in scanning["steps"])
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in scanning["steps"])


def _audit_script() -> str:
    step = next(s for s in _workflow()["jobs"]["audit"]["steps"] if s.get("id") == "audit")
    assert "${{" not in step["run"], "values reach the shell through env, never by interpolation"
    return step["run"]


def _run_audit_step(repo: Path, tmp_path: Path) -> tuple[dict, Path]:
    """Run the workflow's audit step with bash in the fixture checkout, `golfaudit` being our audit.py."""
    shim = tmp_path / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "golfaudit").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "audit.py"}" "$@"\n')
    (shim / "golfaudit").chmod(0o755)
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    out, summary = tmp_path / "gh_output", tmp_path / "gh_summary"
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "BASE_REF": "main",
           "HEAD_SHA": git(repo, "rev-parse", "HEAD").strip(), "REPO_URL": "https://github.com/o/pg",
           "PR_NUMBER": "7", "GOLFAUDIT_CACHE_DIR": str(tmp_path / "cache"), "GITHUB_OUTPUT": str(out),
           "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(["bash", "-e", "-c", _audit_script()], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return outputs, summary


def test_workflow_audit_step_runs_and_gates(repo, tmp_path):
    import jsonschema
    from junitparser import JUnitXml

    outputs, summary = _run_audit_step(repo, tmp_path)
    assert outputs["rc"] == "0"
    reports = repo / "golfaudit-report"
    assert [s["path"] for s in json.loads((reports / "report.json").read_text())["submissions"]] == [A]
    first = summary.read_text().splitlines()[0]
    assert first.startswith("✅ **golfaudit: legal** — eligible: ") and first.endswith(f"`{A}`")
    schema = json.loads((ROOT / "harness/formats/schemas/sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(json.loads((reports / "report.sarif").read_text()))
    assert list(JUnitXml.fromfile(str(reports / "report.junit.xml")))[0].name == A
    assert (reports / "pr-number.txt").read_text().strip() == "7"
    # a PR whose audit fails the gate (a real rule's illegal example as folder A): files still come out, rc 1
    example = _illegal_example(tmp_path / "probe")
    if example is None:
        pytest.skip("no legality rule yet whose ILLEGAL example is judged illegal")
    shutil.rmtree(reports)
    shutil.rmtree(repo / A)
    materialise(example, repo / A)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "A becomes illegal")
    outputs, summary = _run_audit_step(repo, tmp_path / "second")
    assert outputs["rc"] == "1"
    assert json.loads((reports / "report.json").read_text())["submissions"][0]["verdict"] == "illegal"
    assert (reports / "report.md").read_text().startswith("❌ **golfaudit: illegal**")
    assert "illegal" in summary.read_text()


def _illegal_example(scratch: Path):
    """The first ILLEGAL example of a real legality rule that the whole engine judges illegal."""
    from harness.engine import audit_submission
    from tests.test_suppress import _legality_example

    for n, (_, ex) in enumerate(_legality_example()):
        folder = scratch / str(n) / A
        folder.mkdir(parents=True)
        materialise(ex, folder)
        if audit_submission(folder).verdict == "illegal":
            return ex
    return None
