"""`check --changed-since REF`: which records folders a change adds, and what else it touches.

The change is `git diff --name-only --no-renames REF...HEAD`: from the merge-base of REF and HEAD to HEAD,
so commits that landed on the base after the branch forked are not the branch's (a branch behind its base
audits only its own folder). A record PR adds exactly one new folder `records/<track>/<name>/`; anything
else it touches (other paths, a second folder, an existing record) is reported as RECORDS-FOLDER, a
hygiene finding. Real `git` subprocesses; nothing here imports torch.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from harness.registry import rule_by_id
from harness.report import Finding, Report, SubmissionReport
from harness.suppress import NO_FOLDER_TRACK, rejudge

GIT_TIMEOUT_S = 60
LIST_LIMIT = 10


class ChangedError(Exception):
    """The change cannot be computed (not a git checkout, unknown ref, no merge-base, git missing)."""


@dataclass(frozen=True)
class ChangeSet:
    repo_root: Path
    ref: str
    merge_base: str
    files: tuple[str, ...]          # every changed path, relative to the repository root
    folders: tuple[str, ...]        # records folders the change touches that exist at HEAD
    existing: tuple[str, ...]       # touched folders that already existed at the merge-base
    deleted: tuple[str, ...]        # touched folders that no longer exist at HEAD
    outside: tuple[str, ...]        # changed paths outside any records folder

    def problems(self) -> list[str]:
        """Why this change is not 'one new records folder' (empty when it is)."""
        out = []
        if self.outside:
            out.append("changes outside a records folder: " + _listing(self.outside))
        touched = len(self.folders) + len(self.deleted)
        if touched > 1:
            out.append(f"touches {touched} records folders: " + _listing(self.folders + self.deleted))
        if self.existing:
            out.append("modifies records folder(s) that already existed at the merge-base: "
                       + _listing(self.existing))
        if self.deleted:
            out.append("deletes records folder(s): " + _listing(self.deleted))
        if not self.folders and not self.deleted and not self.outside and self.files:
            out.append("contains no records folder")
        return out


def _listing(items: tuple[str, ...]) -> str:
    shown = ", ".join(items[:LIST_LIMIT])
    return shown + (f" and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else "")


def git(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise ChangedError("git is not installed (needed by --changed-since)") from None
    except subprocess.TimeoutExpired:
        raise ChangedError(f"git {' '.join(args)} took more than {GIT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise ChangedError(f"git {' '.join(args)} failed: {err[-1] if err else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", errors="surrogateescape")


def records_folder_of(path: str) -> str | None:
    """`records/<track>/<name>` for a path inside one, else None."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[0] == "records" and all(parts[:3]):
        return "/".join(parts[:3])
    return None


def _exists(commit: str, path: str, cwd: Path) -> bool:
    try:
        return bool(git(["ls-tree", "--name-only", commit, "--", path], cwd).strip())
    except ChangedError:
        return False


def changes_since(ref: str, cwd: Path | None = None) -> ChangeSet:
    cwd = cwd or Path.cwd()
    if ref.startswith("-"):
        raise ChangedError(f"{ref!r} is not a git revision")
    root = Path(git(["rev-parse", "--show-toplevel"], cwd).strip())
    try:
        base = git(["merge-base", ref, "HEAD"], root).strip()
    except ChangedError as exc:
        raise ChangedError(f"no merge-base between {ref!r} and HEAD ({exc}); in CI fetch the base branch with "
                           f"full history (actions/checkout fetch-depth: 0)") from None
    raw = git(["diff", "--name-only", "--no-renames", "-z", f"{ref}...HEAD"], root)
    files = tuple(sorted(p for p in raw.split("\0") if p))
    folders: dict[str, None] = {}
    outside = []
    for path in files:
        folder = records_folder_of(path)
        if folder is None:
            outside.append(path)
        else:
            folders.setdefault(folder)
    present = tuple(f for f in folders if _exists("HEAD", f, root))
    deleted = tuple(f for f in folders if f not in present)
    existing = tuple(f for f in present if _exists(base, f, root))
    return ChangeSet(root, ref, base, files, present, existing, deleted, tuple(outside))


def head_commit(root: Path) -> str | None:
    """The checkout's HEAD commit, None when git cannot say."""
    try:
        return git(["rev-parse", "HEAD"], root).strip() or None
    except ChangedError:
        return None


def records_folder_findings(change: ChangeSet) -> list[Finding]:
    """RECORDS-FOLDER hygiene findings for a change that is not one new records folder."""
    problems = change.problems()
    if not problems:
        return []
    rule = rule_by_id("RECORDS-FOLDER")()
    return [rule.finding(f"the change since {change.ref} (merge-base {change.merge_base[:12]}) should add one new "
                         f"records folder and nothing else; it {problem}", severity="error",
                         evidence="\n".join(change.files[:50]))
            for problem in problems]


def add_change_findings(report: Report, change: ChangeSet) -> Report:
    """Attach the change's RECORDS-FOLDER findings to every audited folder (or to '.' when there is none)."""
    extra = records_folder_findings(change)
    if not extra:
        return report
    subs = list(report.submissions)
    if subs:
        subs = [rejudge(s, [*s.findings, *extra]) for s in subs]
    else:
        empty = SubmissionReport(path=".", track=NO_FOLDER_TRACK, verdict="legal", eligible=None)
        subs = [rejudge(empty, extra)]
    return replace(report, submissions=tuple(subs))
