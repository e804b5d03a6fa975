"""Run `audit.py check` as a real subprocess on hostile folders, and read its JSON report.

Shared by the robustness tests. Every run is bounded in time (a hang is a failure, not a stuck CI job)
and in address space (a decompression bomb that is followed dies with MemoryError instead of eating the
machine), and its stderr must never hold a Python traceback.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import record_emitted

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / "audit.py"
ADDRESS_SPACE = 2 * 1024 ** 3   # bytes of virtual memory one `check` run may map (it needs <1 GiB)
VERDICT_ORDER = {"legal": 0, "needs-review": 1, "illegal": 2, "error": 3}

GOOD_SCRIPT = "import os\n\n\ndef main():\n    print(os.environ.get('SEED', '1'))\n\n\nmain()\n"
GOOD_JSON = ('{"name": "robust", "author": "a", "github_id": "a", "val_bpb": 1.2, '
             '"date": "2026-04-20"}\n')
GOOD_LOG = "final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.20000000\n"
GOOD_FILES: dict[str, str | bytes] = {
    "train_gpt.py": GOOD_SCRIPT,
    "README.md": "# A plain record\n",
    "submission.json": GOOD_JSON,
    "train_seed1.log": GOOD_LOG,
}


def write_folder(path: Path, files: Mapping[str, str | bytes]) -> Path:
    """Create `path` holding `files` (name → text or bytes); returns `path`."""
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return path


def good_folder(parent: Path, name: str = "good") -> Path:
    return write_folder(parent / name, GOOD_FILES)


def case_folder(parent: Path, changes: Mapping[str, str | bytes | None], name: str = "case") -> Path:
    """A good folder with some files replaced or added (a value of `None` removes the file)."""
    files = dict(GOOD_FILES)
    for fname, value in changes.items():
        if value is None:
            files.pop(fname, None)
        else:
            files[fname] = value
    return write_folder(parent / name, files)


def _limit_memory() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@dataclass
class CheckRun:
    rc: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None = None
    by_path: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sub(self, path: str) -> dict[str, Any]:
        assert self.report is not None, f"no JSON report; rc={self.rc} stderr={self.stderr[-2000:]}"
        assert path in self.by_path, f"{path} missing from the report: {sorted(self.by_path)}"
        return self.by_path[path]


def permission_prefix() -> list[str] | None:
    """A command prefix under which file permissions bind: [] for a normal user; for root, `setpriv`
    dropping the capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); None if neither."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def run_audit(cwd: Path, args: Iterable[str], timeout: float = 120,
              env: Mapping[str, str] | None = None, prefix: Iterable[str] = ()) -> subprocess.CompletedProcess:
    """`python audit.py ARGS` in `cwd`, bounded in time and memory; fails on a hang, crash or traceback."""
    cmd = [*prefix, sys.executable, str(AUDIT), *args]
    full_env = dict(os.environ)
    full_env.setdefault("GOLFAUDIT_CACHE_DIR", str(cwd / ".golfaudit-cache"))
    full_env.update(env or {})
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
                              preexec_fn=_limit_memory, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`{' '.join(cmd)}` did not finish within {timeout}s (a hang)") from None
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode} (a crash): {proc.stderr[-2000:]}"
    assert "Traceback (most recent call last)" not in proc.stderr, proc.stderr[-4000:]
    return proc


def run_check(cwd: Path, *paths: str | Path, extra: Iterable[str] = ("--jobs", "1"),
              timeout: float = 120, fmt: str = "json", env: Mapping[str, str] | None = None,
              prefix: Iterable[str] = ()) -> CheckRun:
    """`python audit.py check PATHS --format FMT EXTRA` in `cwd`, its JSON report parsed."""
    proc = run_audit(cwd, ["check", *map(str, paths), "--format", fmt, *extra], timeout, env, prefix)
    run = CheckRun(proc.returncode, proc.stdout, proc.stderr)
    if fmt == "json" and proc.stdout.strip():
        run.report = json.loads(proc.stdout)
        run.by_path = {s["path"]: s for s in run.report["submissions"]}
        record_emitted(run.report)
    return run


def contract_exit_code(report: dict[str, Any], fail_on: str = "illegal") -> int:
    """The CLI contract: 1 when a verdict is `error` or at/above --fail-on, else 0."""
    bar = VERDICT_ORDER[fail_on]
    return int(any(s["verdict"] == "error" or VERDICT_ORDER[s["verdict"]] >= bar
                   for s in report["submissions"]))


def assert_contract(run: CheckRun) -> None:
    assert run.report is not None, f"no report: rc={run.rc} stderr={run.stderr[-2000:]}"
    assert run.rc == contract_exit_code(run.report), (run.rc, [(s["path"], s["verdict"])
                                                              for s in run.report["submissions"]])


def assert_good_audited(run: CheckRun, path: str = "good") -> None:
    """The well-formed folder in the same batch was audited normally."""
    sub = run.sub(path)
    assert sub["verdict"] == "legal", (sub["verdict"], messages(sub))
    assert "error" not in sub
    assert not [f for f in sub["findings"] if f["rule"] == "RECORDS-FOLDER" and f["severity"] == "error"]


def messages(sub: dict[str, Any], rule: str | None = None, severity: str | None = None) -> list[str]:
    return [f["message"] for f in sub["findings"]
            if (rule is None or f["rule"] == rule) and (severity is None or f["severity"] == severity)]


def findings_about(sub: dict[str, Any], file: str, severity: str | None = None) -> list[dict[str, Any]]:
    """Findings whose file is `file` or whose message names it."""
    return [f for f in sub["findings"] if (f["file"] == file or file in f["message"])
            and (severity is None or f["severity"] == severity)]


def log_values(measured: Any, log_name: str) -> list[Any]:
    """Every measured value whose source is a log and whose detail names `log_name`."""
    out: list[Any] = []
    if isinstance(measured, dict):
        if measured.get("source") == "log" and log_name in str(measured.get("detail", "")):
            out.append(measured.get("value"))
        for value in measured.values():
            out.extend(log_values(value, log_name))
    elif isinstance(measured, list):
        for value in measured:
            out.extend(log_values(value, log_name))
    return out
