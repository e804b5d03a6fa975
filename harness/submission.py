"""Load one submission: its files, its submission.json (tolerantly), its logs, its code.

Nothing here executes submission code. Files are read with size caps, symlinks are recorded and never
followed, and every problem becomes a `LoadProblem` naming the file, so rules can report it and the
batch goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import tokenize
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.logs import parse_log_file
from harness.options import AuditOptions

MAX_TEXT_BYTES = 32 * 1024 * 1024   # code and json files larger than this are not read
MAX_LOG_BYTES = 64 * 1024 * 1024    # logs: only the first/last part beyond this is parsed
MAX_FILES = 5000
MAX_JSON_DEPTH = 64
LOG_SUFFIXES = (".log", ".txt")
NOT_LOGS = {"readme.md", "requirements.txt", "results.md"}
DATE_RE = re.compile(r"(20\d\d-\d\d-\d\d)")


class LoadError(Exception):
    """A submission (or one of its files) cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class LoadProblem:
    file: str
    message: str


@dataclass(frozen=True)
class JsonResult:
    data: dict[str, Any] | None
    error: str | None


def decode_source(raw: bytes, name: str) -> str:
    """Decode Python source as Python does: a UTF-8 BOM or a PEP 263 coding line, else UTF-8."""
    lines = iter(raw.splitlines(keepends=True)[:2])
    try:
        encoding, _ = tokenize.detect_encoding(lambda: next(lines, b""))
    except SyntaxError as exc:  # an unknown coding, a BOM contradicting it, or undecodable first lines
        if "invalid or missing encoding" not in str(exc):
            raise LoadError(f"{name}: {exc}") from None
        encoding = "utf-8"  # decoding below names the first bad byte
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LoadError(f"{name}: not valid {encoding} at byte {exc.start} ({exc.reason})") from None


def _json_depth_ok(text: str) -> bool:
    depth = 0
    in_str = False
    escape = False
    for ch in text:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def printable(name: str) -> str:
    """A file name as valid UTF-8 text: undecodable bytes (surrogate escapes) become `\\xNN`."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_script_name(name: str) -> bool:
    """A top-level name that would be taken for a training script (train*.py)."""
    return "/" not in name and name.startswith("train") and name.endswith(".py")


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISDIR, "directory")):
        if test(mode):
            return kind
    return "special file"


class Submission:
    """One records folder (or a single script), loaded lazily."""

    def __init__(self, root: Path, display_path: str, options: AuditOptions | None = None):
        self.root = root
        self.display_path = display_path
        self.options = options or AuditOptions()
        self.problems: list[LoadProblem] = []
        self.symlinks: list[str] = []
        self.files: dict[str, Path] = {}
        if root.is_file():
            self.single_file = True
            self.files[root.name] = root
        else:
            self.single_file = False
            self._scan()

    # -- files -------------------------------------------------------------------------------
    def _scan(self) -> None:
        count = 0

        def walk_error(exc: OSError) -> None:
            rel = os.path.relpath(exc.filename, self.root) if exc.filename else "."
            where = "." if rel == "." else printable(Path(rel).as_posix())
            self.problems.append(LoadProblem(where, f"{where}: cannot be read: {exc.strerror or exc}"))

        for dirpath, dirnames, filenames in os.walk(self.root, onerror=walk_error, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            if dirpath == str(self.root):
                for d in dirnames:  # `train_gpt.py/` is a folder where the script should be
                    if is_script_name(d):
                        self.problems.append(LoadProblem(printable(d), f"{printable(d)}: is a directory, not a file"))
            for d in list(dirnames):
                if os.path.islink(os.path.join(dirpath, d)):
                    self.symlinks.append(printable(os.path.relpath(os.path.join(dirpath, d), self.root)))
                    dirnames.remove(d)
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = printable(full.relative_to(self.root).as_posix())
                try:
                    mode = full.lstat().st_mode
                except OSError as exc:
                    self.problems.append(LoadProblem(rel, f"{rel}: cannot be read: {exc.strerror or exc}"))
                    continue
                if stat.S_ISLNK(mode):
                    self.symlinks.append(rel)
                    continue
                if not stat.S_ISREG(mode):  # FIFO, socket, device: opening one may block forever
                    self.problems.append(LoadProblem(rel, f"{rel}: is a {_file_kind(mode)}, not a regular file; "
                                                          "it was not read"))
                    continue
                try:  # unreadable now (permissions): recorded once here, never handed to a rule
                    os.close(os.open(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
                except OSError as exc:
                    self.problems.append(LoadProblem(rel, f"{rel}: cannot be read: {exc.strerror or exc}"))
                    continue
                count += 1
                if count > MAX_FILES:
                    self.problems.append(LoadProblem(".", f"more than {MAX_FILES} files; the rest were not read"))
                    return
                self.files[rel] = full

    def size(self, name: str) -> int:
        return self.files[name].stat().st_size

    def read_bytes(self, name: str, limit: int = MAX_TEXT_BYTES) -> bytes:
        path = self.files[name]
        try:
            size = path.stat().st_size
            if size > limit:
                raise LoadError(f"{name}: {size} bytes, over the {limit}-byte limit for reading")
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise LoadError(f"{name}: cannot be read: {exc.strerror or exc}") from None
        if len(data) > limit:
            raise LoadError(f"{name}: over the {limit}-byte limit for reading")
        return data

    def read_source(self, name: str) -> str:
        return decode_source(self.read_bytes(name), name)

    # -- identity -------------------------------------------------------------------------------
    @cached_property
    def track(self) -> str:
        parts = self.root.resolve().parts
        if "track_non_record_16mb" in parts:
            return "non-record-16mb"
        if "track_10min_16mb" in parts:
            return "10min-16mb"
        data = self.submission_json.data or {}
        raw = str(data.get("track", "")).replace("_", "-")
        if "unlimited" in raw:
            return "non-record-unlimited-compute-16mb"
        if "non-record" in raw:
            return "non-record-16mb"
        return "10min-16mb"

    @cached_property
    def date(self) -> dt.date | None:
        """The submission's own date: submission.json `date`, else the folder name's date prefix."""
        data = self.submission_json.data or {}
        for text in (str(data.get("date", "")), self.root.name):
            match = DATE_RE.search(text)
            if match:
                try:
                    return dt.date.fromisoformat(match.group(1))
                except ValueError:
                    continue
        return None

    @property
    def judged_date(self) -> dt.date | None:
        return self.options.rules_as_of or self.date

    # -- submission.json -------------------------------------------------------------------------
    @cached_property
    def submission_json_name(self) -> str | None:
        if "submission.json" in self.files:
            return "submission.json"
        others = sorted(n for n in self.files if "/" not in n and n.startswith("submission") and n.endswith(".json"))
        return others[0] if others else None

    @cached_property
    def submission_json(self) -> JsonResult:
        name = self.submission_json_name
        if name is None:
            return JsonResult(None, None)
        try:
            raw = self.read_bytes(name, limit=4 * 1024 * 1024)
            text = raw.decode("utf-8-sig")
        except LoadError as exc:
            return JsonResult(None, str(exc))
        except UnicodeDecodeError as exc:
            return JsonResult(None, f"{name}: not valid UTF-8 at byte {exc.start}")
        if not _json_depth_ok(text):
            return JsonResult(None, f"{name}: nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return JsonResult(None, f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
        except RecursionError:
            return JsonResult(None, f"{name}: nested too deeply to parse")
        except ValueError as exc:  # e.g. an integer over Python's 4300-digit conversion limit
            return JsonResult(None, f"{name}: invalid JSON: {exc}")
        if not isinstance(data, dict):
            return JsonResult(None, f"{name}: top level is {type(data).__name__}, not an object")
        return JsonResult(data, None)

    # -- logs --------------------------------------------------------------------------------------
    @cached_property
    def log_names(self) -> list[str]:
        out = []
        for name in self.files:
            base = name.rsplit("/", 1)[-1].lower()
            if base in NOT_LOGS or not base.endswith(LOG_SUFFIXES):
                continue
            out.append(name)
        return sorted(out)

    @cached_property
    def logs(self) -> list[Any]:
        """Parsed logs (harness.logs.ParsedLog), one per log file, in name order."""
        return [parse_log_file(self.files[n], n, MAX_LOG_BYTES) for n in self.log_names]

    # -- code --------------------------------------------------------------------------------------
    @cached_property
    def script_names(self) -> list[str]:
        """Candidate training scripts: train_gpt.py first, else top-level train*.py files."""
        if self.single_file:
            return list(self.files)
        if "train_gpt.py" in self.files:
            return ["train_gpt.py"]
        return sorted(n for n in self.files if "/" not in n and n.startswith("train") and n.endswith(".py"))

    @cached_property
    def readme_text(self) -> str:
        for name in ("README.md", "readme.md", "README.MD"):
            if name in self.files:
                try:
                    return self.read_bytes(name, limit=2 * 1024 * 1024).decode("utf-8", errors="replace")
                except LoadError:
                    return ""
        return ""
