"""Run one command in a sandbox and watch it: budgets, process and memory limits, a timestamped log.

The host side of the sandbox. It starts `init.py` as PID 1 of new mount, PID, network, IPC and UTS
namespaces (util-linux `unshare`), inside per-run cgroups where the host allows them, reads the merged
stdout/stderr line by line into the log (remembering when the training-stop and final-score markers
appeared), and enforces the wall-clock budget (harness.sandbox.deadline: one budget, or phase-aware, counted
from the payload's start): SIGTERM to every process of the namespace at the budget, SIGKILL of PID 1 after
`grace_s`, which makes the kernel kill every process left in the namespace, including `setsid` children and
processes that ignore SIGTERM. The result says when each signal went.

Lifetime: the sandbox never outlives the auditor (harness.sandbox.lifeline). `unshare` is started with
PR_SET_PDEATHSIG=SIGKILL and `--kill-child`; init watches a socket only the auditor holds and kills the
namespace when it closes; a stop request (harness.sandbox.stop: SIGINT, SIGTERM, SIGHUP to the auditor)
kills the run at once, with `killed_for: interrupted`, and the call still returns a result.

Disk: the run's writable host-backed folders (the copy of the submission) may grow by at most `disk_limit`
bytes: RLIMIT_FSIZE caps every file the payload writes, and a watchdog thread sums the folders' allocated
blocks every ~0.2 s and kills the run when they have grown past the limit (a fast writer can overshoot by
what it writes between two checks). The files written stay on the host, readable after the run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from harness.sandbox import stop
from harness.sandbox.cgroups import RunCgroups
from harness.sandbox.deadline import PhaseBudget, deadline, train_end
from harness.sandbox.lifeline import Lifeline, die_with_parent
from harness.sandbox.markers import classify

INIT = Path(__file__).with_name("init.py")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
UID_RANGE = (200_000, 299_999)
SANDBOX_USER = "golfaudit"
MAX_LINE = 1 << 20                         # a line longer than this is split (no unbounded reads)
DEFAULT_DISK_LIMIT = 8 << 30
DISK_POLL_S = 0.2


class SandboxError(RuntimeError):
    """The sandbox could not be set up (the message says what is missing)."""


@dataclass(frozen=True)
class Bind:
    src: str
    dst: str
    ro: bool = True


@dataclass
class SandboxSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: str                               # inside the sandbox
    binds: list[Bind]
    workdir: Path                          # host scratch folder of this run (spec, new-root mount point)
    log_path: Path
    budget_s: float                        # SIGTERM at this many seconds after the payload started
    grace_s: float = 10.0                  # SIGKILL of everything this much later
    phases: PhaseBudget | None = None      # phase-aware budget (stop at the training budget if training runs on)
    max_tasks: int = 4096                  # processes + threads (cgroup pids.max and RLIMIT_NPROC)
    max_memory: int | None = None          # bytes (cgroup memory, else an RSS watchdog)
    rlimit_as: bool = False                # also RLIMIT_AS = max_memory (breaks CUDA: CPU runs only)
    devices: list[str] = field(default_factory=list)   # globs such as /dev/nvidia*
    tmp_size: str = "2g"
    shm_size: str = "2g"
    uid: int | None = None
    use_cgroups: bool = True               # False: rlimits and the watchdog only (as on hosts without cgroups)
    max_log_bytes: int = 256 << 20         # console output beyond this is dropped (and reported)
    disk_limit: int | None = DEFAULT_DISK_LIMIT   # bytes the run may add to its writable host folders


@dataclass
class SandboxResult:
    exit_code: int | None
    wall_s: float
    log_path: str
    uid: int
    killed_for: str | None = None          # "budget", "memory", "disk" or "interrupted"
    limits_applied: list[str] = field(default_factory=list)
    task_limit_hit: bool = False
    memory_limit_hit: bool = False
    peak_tasks: int = 0
    peak_rss: int = 0
    leftovers_killed: int = 0
    markers: list[tuple[float, str, str]] = field(default_factory=list)   # (seconds after start, kind, line)
    namespaces: list[str] = field(default_factory=list)
    log_truncated: bool = False
    disk_limit_hit: bool = False
    disk_written: int = 0                  # peak growth of the writable host folders (allocated bytes)
    largest_file: int = 0                  # bytes of the largest file in them after the run
    disk_unmeasured: str | None = None     # a folder the watchdog could not list (treated as over the limit)
    startup_s: float | None = None         # launch to the payload's exec: namespaces, mounts (not the submission's)
    budget_phase: str | None = None        # the budget that ran out: "train", "eval" or "total"
    grace_s: float = 0.0
    term_at: float | None = None           # seconds after the payload's start: SIGTERM to the namespace
    kill_at: float | None = None           # SIGKILL of the namespace (None: everything ended after SIGTERM)
    payload_status: int | None = None      # the payload's own end as init saw it: exit code, or -signal
    stop_signal: str | None = None         # the auditor's stop request (SIGINT, SIGTERM, SIGHUP), if any

    @property
    def over_budget(self) -> bool:
        return self.killed_for == "budget"

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["over_budget"] = self.over_budget
        data["markers"] = [{"t": round(t, 3), "kind": k, "line": line[:300]} for t, k, line in self.markers]
        return data


def sandbox_available() -> str | None:
    """None when sandboxes can be made here, else why not."""
    if sys.platform != "linux":
        return "the sandbox needs Linux namespaces"
    if shutil.which("unshare") is None:
        return "util-linux `unshare` is not installed"
    if os.geteuid() != 0:
        return "the sandbox must be started as root (it mounts, then drops to an unprivileged uid)"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--net", "--fork", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare failed: {probe.stderr.strip() or probe.returncode}"
    return None


def system_binds() -> list[Bind]:
    binds = [Bind(d, d) for d in SYSTEM_DIRS if os.path.lexists(d)]
    binds.append(Bind("/sys", "/sys"))
    return binds


def interpreter_binds(python: str) -> tuple[list[Bind], list[str]]:
    """Read-only binds that make `python` and its packages work inside; also its PYTHONPATH entries."""
    probe = subprocess.run([python, "-c", "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, "
                            "sys.exec_prefix, sys.base_exec_prefix, sys.path]))"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        raise SandboxError(f"{python}: cannot start the interpreter: {probe.stderr.strip()[-300:]}")
    *prefixes, path = json.loads(probe.stdout)
    covered = [b.dst for b in system_binds()]
    binds: list[Bind] = []
    for entry in [*prefixes, *path, os.path.realpath(python)]:
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        entry = os.path.dirname(entry) if os.path.isfile(entry) else entry
        if entry == "/" or any(entry == c or entry.startswith(c.rstrip("/") + "/") for c in covered):
            continue
        covered.append(entry)
        binds.append(Bind(entry, entry))
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.isdir(p)]
    return binds, pythonpath


def _identity_files(workdir: Path, uid: int) -> list[Bind]:
    """/etc/passwd and /etc/group naming only root and the sandbox user (getpwuid must work: torch asks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    passwd, group = workdir / "passwd", workdir / "group"
    passwd.write_text(f"root:x:0:0:root:/root:/bin/sh\n{SANDBOX_USER}:x:{uid}:{uid}:golfaudit sandbox:/tmp:/bin/sh\n")
    group.write_text(f"root:x:0:\n{SANDBOX_USER}:x:{uid}:\n")
    return [Bind(str(passwd), "/etc/passwd"), Bind(str(group), "/etc/group")]


def free_uid() -> int:
    used = set()
    for pid in _pids():
        uid = _status_uid(pid)
        if uid is not None:
            used.add(uid)
    while True:
        uid = random.randint(*UID_RANGE)
        if uid not in used:
            return uid


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _status_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _tree_usage(uid: int) -> tuple[int, int, list[int]]:
    """(threads, resident bytes, pids) of every host process running as `uid`."""
    threads = rss = 0
    pids = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        try:
            if int(fields.get("Uid", "-1").split()[0]) != uid:
                continue
            pids.append(pid)
            threads += int(fields.get("Threads", "1").strip())
            rss += int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        except (ValueError, IndexError):
            continue
    return threads, rss, pids


def writable_folders(binds: list[Bind]) -> list[str]:
    """Host folders the sandbox may write to (read-write binds of directories; device nodes excluded)."""
    return [b.src for b in binds if not b.ro and os.path.isdir(b.src) and not b.src.startswith("/dev")]


class DiskUsage(NamedTuple):
    allocated: int                         # bytes of allocated blocks (sparse holes are free)
    largest: int                           # apparent size of the largest file
    unmeasured: str | None = None          # a folder that could not be read (a path past PATH_MAX), if any


def disk_usage(roots: list[str]) -> DiskUsage:
    """What the files under `roots` occupy; hard links once, symlinks not followed.

    A folder that cannot be listed (its path is longer than PATH_MAX: built with relative mkdir/chdir to hide
    files from a path walk) is named in `unmeasured`; the watchdog treats that as over the limit.
    """
    seen: set[tuple[int, int]] = set()
    total = largest = 0
    unmeasured = None
    stack = list(roots)
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except FileNotFoundError:
            continue                       # removed while we walked
        except OSError as exc:
            unmeasured = unmeasured or f"{folder[:200]}...: {exc.strerror or exc}"
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    unmeasured = unmeasured or f"{entry.path[:200]}...: {exc.strerror or exc}"
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    largest = max(largest, st.st_size)
    return DiskUsage(total, largest, unmeasured)


def _init_pid(unshare_pid: int) -> int | None:
    try:
        kids = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


def _signal(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def run_sandboxed(spec: SandboxSpec) -> SandboxResult:
    """Run `spec.argv` in a fresh sandbox; returns when every process of it is gone. A stop request
    (harness.sandbox.stop) from here on is honoured by the watch loop, never raised mid-setup."""
    reason = sandbox_available()
    if reason:
        raise SandboxError(reason)
    with stop.watching():
        return _run(spec)


def _run(spec: SandboxSpec) -> SandboxResult:

    uid = spec.uid if spec.uid is not None else free_uid()
    root = spec.workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    rlimits = {"RLIMIT_NPROC": spec.max_tasks, "RLIMIT_CORE": 0}
    applied = [f"RLIMIT_NPROC={spec.max_tasks} (uid {uid})", "RLIMIT_CORE=0"]
    if spec.rlimit_as and spec.max_memory:
        rlimits["RLIMIT_AS"] = spec.max_memory
        applied.append(f"RLIMIT_AS={spec.max_memory}")
    disk_roots = writable_folders(spec.binds) if spec.disk_limit else []
    if spec.disk_limit:
        rlimits["RLIMIT_FSIZE"] = spec.disk_limit
        applied.append(f"RLIMIT_FSIZE={spec.disk_limit} (every file the run writes)")
    if disk_roots:
        applied.append(f"disk-watchdog={spec.disk_limit} bytes written under {', '.join(disk_roots)} "
                       f"(checked every ~{DISK_POLL_S}s)")
    disk_base, base_largest, _ = disk_usage(disk_roots) if disk_roots else DiskUsage(0, 0)
    binds = list(spec.binds) + _identity_files(spec.workdir, uid)
    env = {"USER": SANDBOX_USER, "LOGNAME": SANDBOX_USER, **spec.env}
    init_spec = {
        "root": str(root), "cwd": spec.cwd, "uid": uid, "gid": uid, "argv": spec.argv, "env": env,
        "binds": [b.__dict__ for b in binds], "devices": spec.devices, "rlimits": rlimits,
        "tmp_size": spec.tmp_size, "shm_size": spec.shm_size,
    }
    lifeline = Lifeline()
    init_spec["lifeline_fd"] = lifeline.child_fd
    spec_file = spec.workdir / "init.json"
    spec_file.write_text(json.dumps(init_spec))
    groups = RunCgroups.create(f"golfaudit-{uid}-{os.getpid()}", spec.max_tasks if spec.use_cgroups else None,
                               spec.max_memory if spec.use_cgroups else None)
    applied += groups.applied
    watchdog_memory = spec.max_memory if groups.memory_dir is None and spec.max_memory else None
    if watchdog_memory:
        applied.append(f"rss-watchdog={watchdog_memory} (no writable memory cgroup)")
    namespaces = ["mount", "pid", "net (loopback only)", "ipc", "uts"]
    argv = ["unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child",
            "--propagation", "private", sys.executable, "-I", "-S", str(INIT), str(spec_file)]
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    result = SandboxResult(exit_code=None, wall_s=0.0, log_path=str(spec.log_path), uid=uid,
                           limits_applied=applied, namespaces=namespaces)
    result.grace_s = spec.grace_s
    start = time.monotonic()
    # its own session: a terminal's Ctrl-C reaches the auditor alone (which then kills the run), and the
    # payload has no controlling terminal to read from
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                            preexec_fn=die_with_parent(signal.SIGKILL, then=groups.attach_self),
                            close_fds=True, pass_fds=(lifeline.child_fd,), start_new_session=True)
    lifeline.handed_over()
    _watch(spec, result, proc, lifeline, groups, start, uid, disk_roots, disk_base, base_largest, watchdog_memory)
    return result


def _watch(spec: SandboxSpec, result: SandboxResult, proc: subprocess.Popen, lifeline: Lifeline,
           groups: RunCgroups, start: float, uid: int, disk_roots: list[str], disk_base: int, base_largest: int,
           watchdog_memory: int | None) -> None:
    """Pump the log, enforce the limits and the budget, honour stop requests; fill `result`."""
    def pump() -> None:
        written = 0
        with open(spec.log_path, "wb") as log:
            assert proc.stdout is not None
            for raw in iter(lambda: proc.stdout.readline(MAX_LINE), b""):
                if written + len(raw) > spec.max_log_bytes:
                    result.log_truncated = True          # keep draining so the run never blocks on a full pipe
                    continue
                written += len(raw)
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                kind = classify(line)
                if kind:
                    result.markers.append((time.monotonic() - start, kind, line))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    done = threading.Event()

    def disk_watch() -> None:
        assert spec.disk_limit is not None
        while not done.is_set():
            started = time.monotonic()
            usage = disk_usage(disk_roots)
            written = usage.allocated - disk_base
            result.disk_written = max(result.disk_written, written)
            if written > spec.disk_limit or usage.unmeasured:
                result.disk_unmeasured = usage.unmeasured
                result.disk_limit_hit = True
                result.killed_for = result.killed_for or "disk"
                _signal(proc.pid, signal.SIGKILL)
                return
            done.wait(max(DISK_POLL_S, 4 * (time.monotonic() - started)))   # a huge tree: check less often

    watcher = threading.Thread(target=disk_watch, daemon=True) if disk_roots else None
    if watcher:
        watcher.start()
    payload_start: list[float] = []        # CLOCK_MONOTONIC (shared with init) when the payload was started

    def since_start(now: float) -> float:
        return now - (payload_start[0] if payload_start else start)

    def read_lifeline() -> None:
        for event in lifeline.events():
            if event.get("event") == "started" and not payload_start:
                payload_start.append(float(event.get("monotonic") or time.monotonic()))
                result.startup_s = round(payload_start[0] - start, 3)
            elif event.get("event") == "exited" and isinstance(event.get("status"), int):
                result.payload_status = event["status"]

    try:
        while proc.poll() is None:
            read_lifeline()
            elapsed = since_start(time.monotonic())
            threads, rss, _ = _tree_usage(uid)
            result.peak_tasks = max(result.peak_tasks, threads)
            result.peak_rss = max(result.peak_rss, rss)
            if watchdog_memory and rss > watchdog_memory and result.killed_for is None:
                result.killed_for = "memory"
                result.memory_limit_hit = True
                _signal(proc.pid, signal.SIGKILL)
            if stop.requested() and result.stop_signal is None:
                result.stop_signal = stop.signal_name(stop.requested())
                result.killed_for = "interrupted"
                result.kill_at = round(elapsed, 3)
                _kill_now(proc, groups)
            ended = train_end(result.markers)
            offset = result.startup_s or 0.0
            limit, phase = deadline(spec.budget_s, spec.phases, ended[0] - offset if ended else None)
            if elapsed >= limit and result.term_at is None and result.stop_signal is None:
                result.killed_for = result.killed_for or "budget"
                result.budget_phase = phase
                result.term_at = round(elapsed, 3)
                _signal(_init_pid(proc.pid), signal.SIGTERM)
            if result.term_at is not None and result.kill_at is None and elapsed >= result.term_at + spec.grace_s:
                result.kill_at = round(elapsed, 3)
                _kill_now(proc, groups)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            _kill_now(proc, groups)
        proc.wait()
        read_lifeline()
        lifeline.cut()
        if stop.requested() and result.stop_signal is None:      # the run ended as the request came in
            result.stop_signal = stop.signal_name(stop.requested())
            result.killed_for = "interrupted"
        result.wall_s = round(since_start(time.monotonic()), 3)
        done.set()
        reader.join(timeout=10)
        offset = result.startup_s or 0.0
        result.markers = [(t - offset, kind, line) for t, kind, line in result.markers]
        if watcher:
            watcher.join(timeout=30)
            used, result.largest_file, unmeasured = disk_usage(disk_roots)
            result.disk_written = max(result.disk_written, used - disk_base)
            result.disk_unmeasured = result.disk_unmeasured or unmeasured
            assert spec.disk_limit is not None
            if (result.largest_file >= spec.disk_limit and result.largest_file > base_largest) \
                    or result.disk_written > spec.disk_limit or result.disk_unmeasured:
                result.disk_limit_hit = True
        result.exit_code = proc.returncode
        result.task_limit_hit = groups.pids_limit_hit() or result.peak_tasks >= spec.max_tasks
        result.memory_limit_hit = result.memory_limit_hit or groups.memory_limit_hit()
        peak = groups.memory_peak()
        if peak:
            result.peak_rss = max(result.peak_rss, peak)
        groups.kill_and_remove()
        _, _, left = _tree_usage(uid)
        for pid in left:
            _signal(pid, signal.SIGKILL)
        result.leftovers_killed = len(left)
        if result.disk_limit_hit and result.killed_for is None and result.exit_code != 0:
            result.killed_for = "disk"        # the payload died of the limit (EFBIG, SIGXFSZ), not of itself


def _kill_now(proc: subprocess.Popen, groups: RunCgroups) -> None:
    """SIGKILL the namespace's init (the kernel then kills every process in it), `unshare`, and whatever
    the run's cgroups still hold."""
    _signal(_init_pid(proc.pid), signal.SIGKILL)
    _signal(proc.pid, signal.SIGKILL)
    groups.kill()
