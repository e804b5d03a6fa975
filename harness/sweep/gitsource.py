"""Pull-request heads and their records folders, read from a local git clone without a checkout.

Everything goes through `git` plumbing (`for-each-ref`, `merge-base`, `diff`, `ls-tree`, `cat-file
--batch`): a bare mirror with `refs/pull/*/head` works, and so does a partial clone whose large blobs
are absent. What cannot be read (a missing blob, a submodule, a Git LFS pointer, an oversized file) is
a `FolderProblem` of that folder, never an exception.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_S = 120
MAX_BLOB_BYTES = 256 * 1024 * 1024
LFS_HEADER = b"version https://git-lfs.github.com/spec/"
PR_REF_RE = re.compile(r"^refs/pull/(\d+)/")


class SweepError(Exception):
    """The clone cannot be swept (not a git repository, unknown base, git missing)."""


@dataclass(frozen=True)
class Head:
    """One ref of the queue: a pull-request head (number from `refs/pull/<N>/...`) or any other ref."""

    ref: str
    sha: str
    committed: dt.date | None
    number: int | None

    @property
    def label(self) -> str:
        return f"#{self.number}" if self.number is not None else self.ref


@dataclass(frozen=True)
class FolderProblem:
    path: str       # inside the records folder
    message: str


def git(repo: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True,
                              timeout=GIT_TIMEOUT_S, check=False,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_NO_LAZY_FETCH": "1"})
    except FileNotFoundError:
        raise SweepError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise SweepError(f"git {' '.join(args[:3])} took more than {GIT_TIMEOUT_S} s") from None
    if check and done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SweepError(f"git {' '.join(args[:3])} failed: {err[-1] if err else f'exit {done.returncode}'}")
    return done.stdout


def resolve(repo: Path, rev: str) -> str | None:
    out = git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False).decode().strip()
    return out or None


def default_base(repo: Path) -> str:
    for candidate in ("origin/main", "main", "origin/master", "master"):
        if resolve(repo, candidate):
            return candidate
    raise SweepError("no base branch found (tried origin/main, main, origin/master, master); give --base")


def parse_pr_range(text: str) -> tuple[int, int]:
    """`1500-2149` or `1812` → inclusive bounds."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise ValueError(f"{text!r} is not a PR number or a range like 1500-2149")
    lo = int(match.group(1))
    hi = int(match.group(2) or lo)
    if hi < lo:
        raise ValueError(f"{text!r}: the range ends before it starts")
    return lo, hi


def list_heads(repo: Path, patterns: list[str], prs: tuple[int, int] | None = None,
               since: dt.date | None = None) -> list[Head]:
    """Refs matching `patterns`, narrowed to PR numbers in `prs` and to commits dated on/after `since`."""
    raw = git(repo, "for-each-ref", "--format=%(refname)%00%(objectname)%00%(committerdate:short)%00%(objecttype)",
              *patterns).decode("utf-8", "surrogateescape")
    heads = []
    for line in raw.splitlines():
        ref, sha, date, kind = line.split("\0")
        if kind != "commit":
            continue
        match = PR_REF_RE.match(ref)
        number = int(match.group(1)) if match else None
        if prs is not None and (number is None or not prs[0] <= number <= prs[1]):
            continue
        committed = _date(date)
        if since is not None and committed is not None and committed < since:
            continue
        heads.append(Head(ref, sha, committed, number))
    heads.sort(key=lambda h: (h.number is None, h.number or 0, h.ref))
    return heads


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def records_folder_of(path: str) -> str | None:
    """`records/<track>/<name>` for a path inside one, else None."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[0] == "records" and all(parts[:3]):
        return "/".join(parts[:3])
    return None


def merge_base(repo: Path, base: str, sha: str) -> str | None:
    out = git(repo, "merge-base", base, sha, check=False).decode().strip()
    return out or None


def first_parents(repo: Path, base: str) -> list[str]:
    """The base branch's first-parent history, oldest first."""
    return git(repo, "rev-list", "--first-parent", "--reverse", base).decode().split()


def fork_point(repo: Path, base_sha: str, head_sha: str, line: list[str]) -> tuple[str | None, bool]:
    """Where the head's own changes start. For an unmerged head, its merge-base with the base. For a head
    already merged (an ancestor of the base), the merge-base with the base as it was just before the merge:
    the first commit `M` of the base's first-parent `line` that contains the head is found by bisection,
    and the fork is the merge-base of `M^1` and the head. The flag says whether the head is merged."""
    fork = merge_base(repo, base_sha, head_sha)
    if fork != head_sha:
        return fork, False
    lo, hi = 0, len(line) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if is_ancestor(repo, head_sha, line[mid]):
            hi = mid
        else:
            lo = mid + 1
    if not line or lo == 0:
        return None, True
    return merge_base(repo, line[lo - 1], head_sha), True


def changed_folders(repo: Path, since: str, sha: str) -> list[str]:
    """Records folders with a path changed between `since` and `sha` (some may no longer exist at `sha`)."""
    raw = git(repo, "diff", "--name-only", "--no-renames", "-z", since, sha).decode("utf-8", "surrogateescape")
    return sorted({f for f in (records_folder_of(p) for p in raw.split("\0") if p) if f})


def trees(repo: Path, specs: list[str]) -> dict[str, str | None]:
    """Tree ids of many `<commit>:<path>` specs in one `git cat-file --batch-check` (None: absent, or not
    a folder)."""
    unique = list(dict.fromkeys(specs))
    if not unique:
        return {}
    out = git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
              stdin="".join(f"{spec}\n" for spec in unique).encode("utf-8", "surrogateescape"))
    answers = out.decode("utf-8", "surrogateescape").splitlines()
    result = {}
    for spec, answer in zip(unique, answers):
        parts = answer.split()
        result[spec] = parts[0] if len(parts) == 2 and parts[1] == "tree" else None
    return result


def records_folders_at(repo: Path, commit: str) -> list[str]:
    """Every `records/<track>/<name>` folder at `commit`."""
    out = git(repo, "ls-tree", "-d", "-r", "-z", "--name-only", commit, "--", "records/",
              check=False).decode("utf-8", "surrogateescape")
    return sorted({f for f in (records_folder_of(p + "/x") for p in out.split("\0") if p) if f})


def is_ancestor(repo: Path, sha: str, base: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", sha, base],
                          capture_output=True, timeout=GIT_TIMEOUT_S).returncode == 0


def export_folder(repo: Path, commit: str, folder: str, dest: Path) -> list[FolderProblem]:
    """Write `folder` as it is at `commit` under `dest`, from git objects; return what could not be written."""
    listing = git(repo, "ls-tree", "-r", "-z", "-l", commit, "--", folder + "/").decode("utf-8", "surrogateescape")
    problems: list[FolderProblem] = []
    blobs: list[tuple[str, str, str]] = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, name = entry.split("\t", 1)
        mode, kind, sha, size = meta.split()
        rel = name[len(folder) + 1:]
        if kind == "commit":
            problems.append(FolderProblem(rel, f"{rel}: a git submodule (commit {sha[:12]}); its files are not audited"))
        elif size.isdigit() and int(size) > MAX_BLOB_BYTES:
            problems.append(FolderProblem(rel, f"{rel}: {int(size):,} bytes, over the sweep's "
                                               f"{MAX_BLOB_BYTES:,}-byte export limit; not exported"))
        else:
            blobs.append((mode, sha, rel))
    if blobs:
        out = git(repo, "cat-file", "--batch", stdin="".join(f"{sha}\n" for _, sha, _ in blobs).encode())
        pos = 0
        for mode, sha, rel in blobs:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) < 3 or header[1] == b"missing":
                problems.append(FolderProblem(rel, f"{rel}: blob {sha[:12]} is missing from this clone "
                                                   f"(a partial clone leaves large files out); not audited"))
                continue
            size = int(header[2])
            data = out[pos:pos + size]
            pos += size + 1
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if mode == "120000":
                os.symlink(os.fsdecode(data), target)
                continue
            if data.startswith(LFS_HEADER):
                problems.append(FolderProblem(rel, f"{rel}: a Git LFS pointer, not the file; the file is not audited"))
            target.write_bytes(data)
            if mode == "100755":
                target.chmod(0o755)
    return problems
