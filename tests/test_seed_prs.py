"""The five seed PRs: #390 #398 #581 #757 illegal, #1812 legal, each decided at a real backward/step line.

Each PR's records folder(s) are found from `git diff --name-only <merge-base> refs/pull/N/head` in the
PG_REPO clone and exported at the PR head (`git archive`). When a records folder holds no script (#390
keeps its code in `sponge_bath/`), the `.py` files of the PR that its README names are exported into it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import pg_repo, requires_pg_repo

TTT_RULES = ["TTT-SCORE-FIRST", "PREQUANT-TTT-ON-VAL", "TTT-NO-RESCORE", "TTT-MULTI-EPOCH", "TTT-WARMUP-ON-VAL"]
EXPECTED = {390: "illegal", 398: "illegal", 581: "illegal", 757: "illegal", 1812: "legal"}


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def _has_ref(repo: Path, n: int) -> bool:
    try:
        _git(repo, "rev-parse", "--verify", f"refs/pull/{n}/head")
        return True
    except subprocess.CalledProcessError:
        return False


def export_pr_folders(repo: Path, n: int, dest: Path) -> list[Path]:
    """Export every records folder the PR adds or changes, at the PR head, under `dest`."""
    head = f"refs/pull/{n}/head"
    main = "origin/main" if _has_ref_name(repo, "origin/main") else "main"
    base = _git(repo, "merge-base", main, head).decode().strip()
    names = _git(repo, "diff", "--name-only", base, head).decode().splitlines()
    folders = sorted({"/".join(p.split("/")[:3]) for p in names if p.startswith("records/") and p.count("/") >= 3})
    out = []
    for folder in folders:
        data = _git(repo, "archive", "--format=tar", head, folder)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        root = dest / folder
        if not any(root.glob("*.py")):
            readme = (root / "README.md").read_text(errors="replace") if (root / "README.md").exists() else ""
            for p in names:
                if p.endswith(".py") and p in readme:
                    (root / Path(p).name).write_bytes(_git(repo, "show", f"{head}:{p}"))
        out.append(root)
    return out


def _has_ref_name(repo: Path, ref: str) -> bool:
    try:
        _git(repo, "rev-parse", "--verify", ref)
        return True
    except subprocess.CalledProcessError:
        return False


def _line(folder: Path, finding) -> str:
    from harness.context import AuditContext
    from harness.scan.ttt import analyse
    from harness.submission import Submission

    a = analyse(AuditContext(Submission(folder, str(folder))))
    text = a.texts.get(finding.file, "")
    lines = text.splitlines()
    return lines[finding.line - 1] if finding.line and 0 < finding.line <= len(lines) else ""


@requires_pg_repo
@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_seed_pr_verdict(number, tmp_path):
    from harness.engine import audit_submission

    repo = pg_repo()
    if not _has_ref(repo, number):
        pytest.skip(f"refs/pull/{number}/head not fetched in PG_REPO")
    folders = export_pr_folders(repo, number, tmp_path)
    assert folders, f"PR #{number}: no records folder in its diff"
    verdicts = []
    for folder in folders:
        report = audit_submission(folder, rule_ids=TTT_RULES)
        verdicts.append(report.verdict)
        if EXPECTED[number] == "illegal":
            deciding = [f for f in report.findings if f.severity == "error" and f.confidence in ("high", "medium")]
            assert deciding, f"PR #{number} {folder.name}: no deciding finding"
            for f in deciding:
                assert "backward" in _line(folder, f) or ".step(" in _line(folder, f), (f.line, f.message)
        else:
            proofs = [f for f in report.findings if f.severity == "info" and f.rule == "TTT-SCORE-FIRST"]
            assert proofs, f"PR #{number}: no score-first proof"
            assert all("backward" in _line(folder, f) for f in proofs)
            assert "unpacked" in proofs[0].file and "packed" in proofs[0].message
    expected = EXPECTED[number]
    assert expected in verdicts if expected == "illegal" else set(verdicts) == {"legal"}, verdicts
