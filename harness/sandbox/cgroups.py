"""Per-run cgroups for the process count and memory (v1 `pids`/`memory` or v2), where the host allows them.

Every step is best effort: a host without writable cgroups simply yields no group, and the runner then
relies on rlimits and its own watchdog. `applied` says which limits really took.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str) -> str:
    """This process's cgroup path for a v1 controller (or the v2 path with controller '')."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(",") or (controller == "" and names == ""):
                return path
    except OSError:
        pass
    return "/"


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class RunCgroups:
    """The groups made for one run; `dirs` get the process, `applied` lists what is enforced."""

    name: str
    dirs: list[Path] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    pids_dir: Path | None = None
    memory_dir: Path | None = None
    version: int = 0

    @classmethod
    def create(cls, name: str, max_pids: int | None, max_memory: int | None) -> RunCgroups:
        groups = cls(name)
        if (ROOT / "cgroup.controllers").exists():
            groups._create_v2(max_pids, max_memory)
        else:
            groups._create_v1(max_pids, max_memory)
        return groups

    def _create_v1(self, max_pids: int | None, max_memory: int | None) -> None:
        self.version = 1
        if max_pids is not None and (ROOT / "pids").is_dir():
            d = ROOT / "pids" / _own_path("pids").lstrip("/") / self.name
            if self._mkdir(d) and _write(d / "pids.max", str(max_pids)):
                self.pids_dir = d
                self.applied.append(f"cgroup-v1 pids.max={max_pids}")
        if max_memory is not None and (ROOT / "memory").is_dir():
            d = ROOT / "memory" / _own_path("memory").lstrip("/") / self.name
            if self._mkdir(d) and _write(d / "memory.limit_in_bytes", str(max_memory)):
                _write(d / "memory.memsw.limit_in_bytes", str(max_memory))   # no swap escape, where present
                self.memory_dir = d
                self.applied.append(f"cgroup-v1 memory.limit_in_bytes={max_memory}")

    def _create_v2(self, max_pids: int | None, max_memory: int | None) -> None:
        self.version = 2
        parent = ROOT / _own_path("").lstrip("/")
        d = parent / self.name
        if not self._mkdir(d):
            return
        if max_pids is not None and _write(d / "pids.max", str(max_pids)):
            self.pids_dir = d
            self.applied.append(f"cgroup-v2 pids.max={max_pids}")
        if max_memory is not None and _write(d / "memory.max", str(max_memory)):
            _write(d / "memory.swap.max", "0")
            self.memory_dir = d
            self.applied.append(f"cgroup-v2 memory.max={max_memory}")

    def _mkdir(self, d: Path) -> bool:
        try:
            d.mkdir()
        except FileExistsError:
            pass
        except OSError:
            return False
        if d not in self.dirs:
            self.dirs.append(d)
        return True

    def attach_self(self) -> None:
        """Move the calling process into every group (used in the child before exec)."""
        for d in self.dirs:
            _write(d / "cgroup.procs", str(os.getpid()))

    def pids_limit_hit(self) -> bool:
        if self.pids_dir is None:
            return False
        events = self.pids_dir / "pids.events"
        try:
            for line in events.read_text().splitlines():
                key, value = line.split()
                if key == "max" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        peak = _read_int(self.pids_dir / "pids.peak")
        limit = _read_int(self.pids_dir / "pids.max")
        return peak is not None and limit is not None and peak >= limit

    def memory_limit_hit(self) -> bool:
        if self.memory_dir is None:
            return False
        if self.version == 1:
            try:
                for line in (self.memory_dir / "memory.oom_control").read_text().splitlines():
                    key, value = line.split()
                    if key == "oom_kill" and int(value) > 0:
                        return True
            except (OSError, ValueError):
                pass
            return (_read_int(self.memory_dir / "memory.failcnt") or 0) > 0
        try:
            for line in (self.memory_dir / "memory.events").read_text().splitlines():
                key, value = line.split()
                if key in ("oom", "oom_kill", "max") and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def memory_peak(self) -> int | None:
        if self.memory_dir is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        return _read_int(self.memory_dir / name)

    def kill(self) -> None:
        """SIGKILL every process in the groups: `cgroup.kill` on v2 (the kernel kills the whole group, forks
        in flight included), else each pid `cgroup.procs` lists."""
        import signal

        for d in self.dirs:
            if self.version == 2:
                _write(d / "cgroup.kill", "1")
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
            except OSError:
                pass

    def kill_and_remove(self) -> None:
        """Kill anything left in the groups, then remove them."""
        import time

        self.kill()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
