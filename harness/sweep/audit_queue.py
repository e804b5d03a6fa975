"""Audit the folders of a sweep in parallel, each at most once per content (cached by its git tree id).

A worker exports one folder from git objects into a temporary directory, audits it with the same engine
as `check`, and deletes the directory before taking the next one, so memory and disk stay bounded by
`--jobs` folders. Each result is written to the result cache as soon as it exists: an interrupted sweep
keeps what it finished, and a re-run audits only new or changed folders.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import cache
from harness.engine import audit_submission
from harness.options import AuditOptions
from harness.sweep.gitsource import export_folder

CACHE_TAG = "sweep-folder-v1"
DATE_RE = re.compile(r"(20\d\d-\d\d-\d\d)")


@dataclass(frozen=True)
class FolderJob:
    """One records folder at one commit; `tree` (its git tree id) says what its content is."""

    repo: Path
    commit: str
    folder: str
    tree: str

    def key(self, options: AuditOptions) -> str:
        digest = hashlib.sha256()
        for part in (CACHE_TAG, cache.code_fingerprint(), options.key(), self.folder, self.tree):
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        return digest.hexdigest()


def folder_date(folder: Path) -> str | None:
    """The submission's own date: submission.json `date`, else the folder name's date prefix (ISO text)."""
    texts = []
    try:
        data = json.loads((folder / "submission.json").read_text(encoding="utf-8"))
        if isinstance(data, dict):
            texts.append(str(data.get("date", "")))
    except (OSError, ValueError):
        pass
    texts.append(folder.name)
    for text in texts:
        match = DATE_RE.search(text)
        if match:
            return match.group(1)
    return None


def audit_job(job: FolderJob, options: AuditOptions, use_cache: bool = True) -> dict[str, Any]:
    """Export, audit and forget one folder; the result is JSON-ready: report, export problems, date."""
    key = job.key(options) if use_cache else None
    if key:
        hit = cache.load(key)
        if hit is not None and {"report", "problems", "date"} <= hit.keys():
            return hit
    workdir = Path(tempfile.mkdtemp(prefix="golfaudit-sweep-"))
    try:
        dest = workdir / job.folder
        dest.mkdir(parents=True)
        problems = export_folder(job.repo, job.commit, job.folder, dest)
        report = audit_submission(dest, options, display=job.folder)
        result = {"report": report.to_json(), "problems": [p.message for p in problems],
                  "date": folder_date(dest)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if key:
        cache.store(key, result)
    return result


def _run_one(args: tuple[FolderJob, AuditOptions, bool]) -> dict[str, Any]:
    return audit_job(*args)


class Progress:
    """Counts and an ETA on stderr: a rich bar on a terminal, a plain line every `every` folders otherwise."""

    def __init__(self, total: int, every: int = 25, stream=None):
        self.total, self.every, self.done = total, every, 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._bar = None
        if total and self.stream.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar("sweep", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
            self._task = self._bar.add_task("sweep", total=total)
            self._bar.start()

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        elif self.done % self.every == 0 or self.done == self.total:
            elapsed = time.monotonic() - self.start
            eta = elapsed / self.done * (self.total - self.done)
            print(f"golfaudit sweep: {self.done}/{self.total} folders, {elapsed:.0f} s, ETA {eta:.0f} s",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def audit_jobs(jobs: Iterable[FolderJob], options: AuditOptions, workers: int, use_cache: bool = True,
               on_done: Callable[[], None] | None = None) -> Iterator[tuple[FolderJob, dict[str, Any]]]:
    """Yield (job, result) as they finish. KeyboardInterrupt cancels what has not started."""
    pending = list(dict.fromkeys(jobs))
    if workers <= 1 or len(pending) <= 1:
        for job in pending:
            result = audit_job(job, options, use_cache)
            if on_done:
                on_done()
            yield job, result
        return
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futures: dict[Future, FolderJob] = {pool.submit(_run_one, (job, options, use_cache)): job for job in pending}
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in done:
                if on_done:
                    on_done()
                yield futures[future], future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
