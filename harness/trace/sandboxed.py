"""Lay out and run the traced child inside the sandbox (harness.sandbox.supervisor): no network, private /tmp,
scrubbed env, an unprivileged uid, a wall-clock budget, memory and task limits.

Inside the sandbox:

    /sandbox/run                 writable copy of the submission folder (the working folder; --artifact too)
    /sandbox/out                 writable; the child writes events.json here (it comes back to the host)
    /golfaudit/harness           this package's source tree, read-only, on PYTHONPATH
    /data/datasets/<name>        the --data folder, read-only (DATA_PATH, VAL_FILES; DATA_DIR=/data/); when
                                 the sandbox's uid could not read it, a copy of its val shards instead
    /data/tokenizers             <data>/../../tokenizers when --data sits in a datasets/ folder, read-only
    /data/tok/<model>            the --tokenizer file, read-only (TOKENIZER_PATH)

Host side, kept after the run under the work folder: run/, out/events.json, console.log.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.sandbox.prepare import (
    SYSTEM_PATH,
    _chown_tree,
    _covers,
    default_memory,
    host_settings,
    visible_host_path,
)
from harness.sandbox.supervisor import Bind, SandboxError, SandboxSpec, interpreter_binds, system_binds

REPO = Path(__file__).resolve().parents[2]
INSIDE_RUN, INSIDE_OUT, INSIDE_SRC, INSIDE_DATA = "/sandbox/run", "/sandbox/out", "/golfaudit", "/data"
SANDBOX_OWNED = ("DATA_PATH", "DATA_DIR", "VAL_FILES", "TOKENIZER_PATH", "PYTHONPATH", "PATH", "HOME")
MAX_EVENTS_BYTES = 1 << 30


@dataclass
class SandboxOptions:
    budget: float = 600.0                  # SIGTERM at this many seconds, SIGKILL `grace` later
    grace: float = 5.0
    gpus: int = 0                          # >= 1: /dev/nvidia* passed through, CUDA_VISIBLE_DEVICES set
    workdir: Path | None = None            # host folder of the run (default out/trace-runs/<name>-<pid>-<t>)
    python: str = field(default_factory=lambda: sys.executable)
    max_memory: int | None = None
    max_tasks: int | None = None


@dataclass
class Layout:
    spec: Any                              # harness.sandbox.supervisor.SandboxSpec
    workdir: Path
    events: Path                           # host path of the child's events.json
    data_note: str = "read-only bind of --data"


def _others_can_read(folder: Path) -> bool:
    """The sandbox's uid (neither owner nor group) can list `folder` and read every file in it."""
    need_dir = stat.S_IROTH | stat.S_IXOTH
    if folder.stat().st_mode & need_dir != need_dir:
        return False
    return all(p.stat().st_mode & stat.S_IROTH for p in folder.iterdir() if p.is_file())


def default_workdir(script: Path) -> Path:
    return Path("out") / "trace-runs" / f"{script.parent.name or 'run'}-{os.getpid()}-{int(time.time())}"


def layout(script: Path, data: Path, tokenizer: Path | None, tokens: int | None, env: dict[str, str],
           artifact: Path | None, opts: SandboxOptions, uid: int, base_env: dict[str, str],
           whole_folder: bool = True) -> Layout:
    """Build the run's host folders and its `SandboxSpec` (raises OSError / SandboxError on setup problems)."""
    work = (opts.workdir or default_workdir(script)).resolve()
    if work.exists() and any(work.iterdir()):
        raise SandboxError(f"{work}: work folder exists and is not empty")
    run_dir, out_dir = work / "run", work / "out"
    if whole_folder:
        shutil.copytree(script.parent, run_dir, symlinks=True)
    else:
        run_dir.mkdir(parents=True)
        shutil.copy2(script, run_dir / script.name)
    if artifact is not None:      # where a script that loads it by name from its working folder finds it
        shutil.copy2(artifact, run_dir / artifact.name)
    out_dir.mkdir()
    _chown_tree(run_dir, uid)
    _chown_tree(out_dir, uid)

    src = str(REPO)
    py_binds, pythonpath = interpreter_binds(opts.python)
    py_binds = [b for b in py_binds if not _covers(b.src, [src])]     # the tree itself only as /golfaudit
    pythonpath = [p for p in pythonpath if not _covers(p, [src])]
    binds = system_binds() + py_binds
    binds += [Bind(p, p) for p in pythonpath if not any(p == b.dst for b in binds)]
    binds.append(Bind(str(REPO / "harness"), f"{INSIDE_SRC}/harness"))
    binds.append(Bind(str(run_dir), INSIDE_RUN, ro=False))
    binds.append(Bind(str(out_dir), INSIDE_OUT, ro=False))
    data = data.resolve()
    inside_data = f"{INSIDE_DATA}/datasets/{data.name}"
    if not _others_can_read(data):            # e.g. a 0700 temporary folder: copy its val shards instead
        copy = work / "data" / data.name
        copy.mkdir(parents=True)
        for shard in sorted(data.glob("fineweb_val_*.bin")):
            shutil.copyfile(shard, copy / shard.name)
        _chown_tree(copy, uid)
        data = copy
        data_note = "read-only bind of a copy of its val shards (the sandbox uid cannot read --data)"
    else:
        data_note = "read-only bind of --data"
    binds.append(Bind(str(data), inside_data))
    settings = {**base_env, **env}
    owned = {"DATA_PATH": inside_data, "DATA_DIR": f"{INSIDE_DATA}/",
             "VAL_FILES": f"{inside_data}/fineweb_val_*.bin"}
    tok_dir = data.parent.parent / "tokenizers"
    if data.parent.name == "datasets" and tok_dir.is_dir():
        binds.append(Bind(str(tok_dir.resolve()), f"{INSIDE_DATA}/tokenizers"))
    if tokenizer is not None:
        owned["TOKENIZER_PATH"] = f"{INSIDE_DATA}/tok/{tokenizer.name}"
        tok = tokenizer.resolve()
        if not tok.stat().st_mode & stat.S_IROTH:
            (work / "tok").mkdir()
            tok = Path(shutil.copyfile(tok, work / "tok" / tok.name))
            _chown_tree(tok.parent, uid)
        binds.append(Bind(str(tok), owned["TOKENIZER_PATH"]))
    path = [os.path.dirname(opts.python), *SYSTEM_PATH, *visible_host_path(binds)]
    full = {"HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1", **settings, **owned,
            "PYTHONPATH": os.pathsep.join([INSIDE_SRC, *pythonpath]), "PATH": os.pathsep.join(dict.fromkeys(path))}
    full.update(host_settings(opts.gpus))
    argv = [opts.python, "-m", "harness.trace.child", f"{INSIDE_RUN}/{script.name}", f"{INSIDE_OUT}/events.json"]
    if tokens is not None:
        argv += ["--tokens", str(tokens)]
    memory = opts.max_memory or default_memory(opts.gpus)
    spec = SandboxSpec(argv=argv, env=full, cwd=INSIDE_RUN, binds=binds, workdir=work,
                       log_path=work / "console.log", budget_s=opts.budget, grace_s=opts.grace,
                       max_tasks=opts.max_tasks or (4096 if opts.gpus == 0 else 16384), max_memory=memory,
                       rlimit_as=opts.gpus == 0, devices=["/dev/nvidia*"] if opts.gpus > 0 else [], uid=uid)
    return Layout(spec, work, out_dir / "events.json", data_note)


def read_events(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The child's events and error; a malformed file raises ValueError naming it."""
    if path.stat().st_size > MAX_EVENTS_BYTES:
        raise ValueError(f"{path}: events file over {MAX_EVENTS_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON events file ({exc})") from None
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("kind"), str)
                                               and isinstance(e.get("i"), int) for e in events):
        raise ValueError(f"{path}: malformed events file (expected {{'events': [{{'i': int, 'kind': str}}]}})")
    error = data.get("error")
    return events, error if isinstance(error, str) or error is None else str(error)


def sandbox_summary(result: Any, layout_: Layout) -> dict[str, Any]:
    """What the report says about the isolation and budgets of the traced run."""
    return {"exit_code": result.exit_code, "wall_s": result.wall_s, "budget_s": layout_.spec.budget_s,
            "grace_s": layout_.spec.grace_s, "startup_s": result.startup_s,
            "signals": {"sigterm_at_s": result.term_at, "sigkill_at_s": result.kill_at},
            "killed_for": result.killed_for, "stop_signal": result.stop_signal, "over_budget": result.over_budget,
            "isolation": {"namespaces": result.namespaces, "uid": result.uid, "limits": result.limits_applied,
                          "env": "scrubbed", "tmp": "private tmpfs", "source": f"{INSIDE_SRC} (read-only)",
                          "data": layout_.data_note,
                          "devices": sorted(p for pattern in layout_.spec.devices for p in glob.glob(pattern))},
            "peak_rss": result.peak_rss, "peak_tasks": result.peak_tasks, "workdir": str(layout_.workdir),
            "log": result.log_path, "log_truncated": result.log_truncated}


def console_tail(path: str, lines: int = 1) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 8192))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "no output"
    tail = [t for t in text.strip().splitlines() if t.strip()][-lines:]
    return " | ".join(tail) if tail else "no output"
