"""Lay out one sandboxed run of a submission: scratch folders, data with decoy val shards, env, command.

Host layout under the run's work folder (kept after the run):

    run/                         writable copy of the submission folder (owned by the sandbox uid)
    data/datasets/<variant>/     decoy val shards (same names, headers, counts), decoy CaseOps byte sidecars
                                 (`fineweb_val_bytes_*`, when the real data has them) + mount points for train
    data/tokenizers/<model>      a copy of the tokenizer
    console.log                  everything the run printed

Inside: `/sandbox/run` (cwd), `/data` (read-only; train shards bound read-only one by one),
`/sandbox/compat` (the FA3 stand-in, only when the real module is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.bytetables import TokenizerError
from harness.data.caseops import encode_case
from harness.data.decoys import DecoyFile, make_decoys
from harness.data.shards import read_header, shard_files
from harness.data.sidecars import DecoySidecar, make_decoy_sidecars, sidecar_files, sidecar_tables
from harness.data.tokenize import load_tokenizer
from harness.limits import EVAL_BUDGET_S, TRAIN_BUDGET_S
from harness.sandbox.deadline import PhaseBudget, default_grace
from harness.sandbox.launch import LaunchPlan, launch_plan
from harness.sandbox.supervisor import (
    DEFAULT_DISK_LIMIT,
    Bind,
    SandboxSpec,
    interpreter_binds,
    sandbox_available,
    system_binds,
)
from harness.submission import Submission

COMPAT = Path(__file__).resolve().parent.parent / "compat"
# host settings a GPU run needs (driver paths; NCCL/NVSHMEM switches such as NCCL_NVLS_ENABLE=0 must survive)
PASS_THROUGH = {"LD_LIBRARY_PATH", "CUDA_HOME", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"}
PASS_PREFIXES = ("NCCL_", "NVSHMEM_", "TORCH_SYMM_MEM_")
INSIDE_RUN, INSIDE_DATA, INSIDE_COMPAT = "/sandbox/run", "/data", "/sandbox/compat"
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass
class RunOptions:
    data: Path
    tokenizer: Path
    gpus: int = 0
    train_budget: float = TRAIN_BUDGET_S
    eval_budget: float = EVAL_BUDGET_S
    grace: float | None = None             # SIGTERM to SIGKILL at the budget; None: default_grace(gpus)
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    python: str = sys.executable
    max_memory: int | None = None
    max_tasks: int | None = None
    decoy_val_tokens: int | None = None
    rlimit_as: bool | None = None          # RLIMIT_AS as well as the cgroup; default: only without GPUs
    disk_limit: int | None = None          # bytes the run may write to its folder; None: 8 GiB, 0: no cap
    time_tolerance: float = 1.0            # seconds a phase may overshoot its budget (TRAIN-TIME-600S's default)


@dataclass
class Prepared:
    spec: SandboxSpec
    plan: LaunchPlan
    workdir: Path
    data_folder: Path
    train_files: list[Path]
    real_val_files: list[Path]
    decoys: list[DecoyFile]
    fa3: str                         # "real module", "stand-in (harness/compat)"
    env_settings: dict[str, str]
    decoy_sidecars: list[DecoySidecar] = field(default_factory=list)   # CaseOps byte sidecars, decoyed
    setup_s: float = 0.0             # laying the run out: copies, decoys, probes (not the submission's time)


class PrepareError(ValueError):
    """The run cannot be laid out (missing data, tokenizer, script); the message names what."""


def find_data_folder(data: Path, vocab_size: int) -> Path:
    """The folder holding `fineweb_train_*.bin`: DATA itself, DATA/datasets/fineweb10B_sp<V>, or below."""
    candidates = [data, data / "datasets" / f"fineweb10B_sp{vocab_size}", data / f"fineweb10B_sp{vocab_size}"]
    for folder in candidates:
        if folder.is_dir() and shard_files(folder, "train"):
            return folder
    found = sorted({p.parent for p in data.glob("**/fineweb_train_*.bin")})
    if len(found) == 1:
        return found[0]
    if found:
        raise PrepareError(f"{data}: several shard folders ({', '.join(str(f) for f in found[:4])}); name one")
    raise PrepareError(f"{data}: no fineweb_train_*.bin shards found")


def _has_real_fa3(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import importlib.util, sys; "
                            "sys.exit(0 if importlib.util.find_spec('flash_attn_interface') else 1)"],
                           capture_output=True, timeout=120)
    return probe.returncode == 0


def _memory_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 16 << 30


def default_memory(gpus: int) -> int:
    """The memory limit without --max-memory: 3/4 of RAM up to 8 GiB on CPU, 4/5 of RAM with GPUs."""
    return min(8 << 30, _memory_total() * 3 // 4) if gpus == 0 else _memory_total() * 4 // 5


def host_settings(gpus: int) -> dict[str, str]:
    """What the sandbox takes from the host's environment: driver and NCCL settings, and with GPUs
    CUDA_VISIBLE_DEVICES (the host's, else the first `gpus` devices)."""
    out = {key: value for key, value in os.environ.items() if key in PASS_THROUGH or key.startswith(PASS_PREFIXES)}
    if gpus > 0:
        out["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus))))
    return out


def visible_host_path(binds: list[Bind]) -> list[str]:
    """The host's PATH entries that the binds show inside (e.g. the driver's nvidia-smi folder)."""
    return [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and any(p == b.dst or p.startswith(b.dst.rstrip("/") + "/") for b in binds)]


def _covers(path: str, hidden: list[str]) -> bool:
    """True when binding `path` would show one of the `hidden` folders."""
    real = os.path.realpath(path).rstrip("/") + "/"
    return any((h.rstrip("/") + "/").startswith(real) for h in hidden)


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, uid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def prepare_run(sub: Submission, opts: RunOptions, uid: int) -> Prepared:
    began = time.monotonic()
    if not opts.tokenizer.is_file():
        raise PrepareError(f"{opts.tokenizer}: tokenizer model not found")
    sp = load_tokenizer(opts.tokenizer)
    if not opts.data.is_dir():
        raise PrepareError(f"{opts.data}: data folder not found")
    folder = find_data_folder(opts.data, sp.vocab_size()).resolve()
    train = shard_files(folder, "train")
    real_val = shard_files(folder, "val")
    if not real_val:
        raise PrepareError(f"{folder}: no fineweb_val_*.bin shards to stand decoys in for")
    for path in train:
        read_header(path)                     # a broken train shard is named now, not mid-run
    plan = launch_plan(sub)
    if plan.script not in sub.files:
        raise PrepareError(f"{sub.display_path}: no script {plan.script} to run")
    reason = sandbox_available()
    if reason:
        raise PrepareError(f"sandbox unavailable: {reason}")

    work = opts.workdir or Path("out") / "run" / f"{sub.root.name}-{os.getpid()}"
    if work.exists() and any(work.iterdir()):
        raise PrepareError(f"{work}: work folder exists and is not empty")
    work = work.resolve()
    run_dir, data_dir = work / "run", work / "data"
    if sub.single_file:
        run_dir.mkdir(parents=True)
        shutil.copyfile(sub.root, run_dir / sub.root.name)
    else:
        shutil.copytree(sub.root, run_dir, symlinks=True)
    _chown_tree(run_dir, uid)
    variant = data_dir / "datasets" / folder.name
    real_sidecars = sidecar_files(folder)
    caseops = bool(real_sidecars) or "caseops" in folder.name      # decoy text in the data's own case form
    decoys = make_decoys(real_val, variant, sp, opts.decoy_val_tokens, encode_case if caseops else None)
    try:
        sidecars = make_decoy_sidecars(real_sidecars, variant, sidecar_tables(opts.tokenizer, sp)) \
            if real_sidecars else []
    except (ValueError, TokenizerError) as exc:       # ShardError included: names the file
        raise PrepareError(str(exc)) from None
    for path in train:
        (variant / path.name).touch()                 # mount points; the real shards are bound read-only
    (data_dir / "tokenizers").mkdir(parents=True)
    shutil.copyfile(opts.tokenizer, data_dir / "tokenizers" / opts.tokenizer.name)

    py_binds, pythonpath = interpreter_binds(opts.python)
    hidden = [str(opts.data.resolve()), str(folder.resolve())]
    py_binds = [b for b in py_binds if not _covers(b.src, hidden)]
    pythonpath = [p for p in pythonpath if not _covers(p, hidden)]
    binds = system_binds() + py_binds + [Bind(p, p) for p in pythonpath if not any(p == b.dst for b in py_binds)]
    binds.append(Bind(str(run_dir), INSIDE_RUN, ro=False))
    binds.append(Bind(str(data_dir), INSIDE_DATA))
    inside_variant = f"{INSIDE_DATA}/datasets/{folder.name}"
    binds += [Bind(str(p.resolve()), f"{inside_variant}/{p.name}") for p in train]
    fa3 = "real module" if _has_real_fa3(opts.python) else \
        "stand-in on PYTHONPATH (harness/compat/flash_attn_interface.py; real module absent)"
    if fa3.startswith("stand-in"):
        binds.append(Bind(str(COMPAT), INSIDE_COMPAT))
        pythonpath = [INSIDE_COMPAT, *pythonpath]

    settings = {**plan.env, **opts.env}
    env = {
        "PATH": os.pathsep.join([os.path.dirname(opts.python), *SYSTEM_PATH]),
        "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **settings,
        "DATA_PATH": inside_variant, "TOKENIZER_PATH": f"{INSIDE_DATA}/tokenizers/{opts.tokenizer.name}",
        "DATA_DIR": f"{INSIDE_DATA}/", "RUN_ID": settings.get("RUN_ID", "golfaudit"),
    }
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env.update(host_settings(opts.gpus))
    bins = [os.path.join(p, "bin") for p in pythonpath if os.path.isdir(os.path.join(p, "bin"))]
    env["PATH"] = os.pathsep.join(dict.fromkeys([*bins, *env["PATH"].split(os.pathsep), *visible_host_path(binds)]))
    if opts.gpus > 0:
        argv = [opts.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={opts.gpus}",
                plan.script]
    else:
        argv = [opts.python, plan.script]
    memory = opts.max_memory or default_memory(opts.gpus)
    spec = SandboxSpec(
        argv=argv, env=env, cwd=INSIDE_RUN, binds=binds, workdir=work, log_path=work / "console.log",
        budget_s=opts.train_budget + opts.eval_budget + 2 * opts.time_tolerance,
        grace_s=default_grace(opts.gpus) if opts.grace is None else opts.grace,
        phases=PhaseBudget(opts.train_budget, opts.eval_budget, opts.time_tolerance),
        max_tasks=opts.max_tasks or (4096 if opts.gpus == 0 else 16384), max_memory=memory,
        rlimit_as=opts.gpus == 0 if opts.rlimit_as is None else opts.rlimit_as,
        devices=["/dev/nvidia*"] if opts.gpus > 0 else [], uid=uid,
        disk_limit=DEFAULT_DISK_LIMIT if opts.disk_limit is None else (opts.disk_limit or None))
    return Prepared(spec, plan, work, folder, train, real_val, decoys, fa3, settings, sidecars,
                    time.monotonic() - began)
