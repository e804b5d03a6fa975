"""Several processes (torchrun) for the reference eval: the process group, contiguous shares, and the
collective checks that keep the score ledger global.

Under torchrun (RANK, WORLD_SIZE, LOCAL_RANK set, WORLD_SIZE > 1) `from_env` starts one process group
(NCCL for CUDA, gloo for CPU) and returns a `Dist`. Every collective here is a SUM all-reduce (gloo has no
AVG); gathers are sums of vectors where each rank fills only its own slots, so they are exact.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_CREATED = False


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    device: str = "cpu"        # where collective buffers live (the rank's CUDA device under NCCL)

    def all_reduce_sum(self, t: Any) -> Any:
        """Sum `t` over ranks in place and return it (a CPU tensor travels through `device` and back)."""
        import torch.distributed as tdist

        if t.device == _torch_device(self.device):
            tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
            return t
        tmp = t.to(self.device)
        tdist.all_reduce(tmp, op=tdist.ReduceOp.SUM)
        t.copy_(tmp.to(t.device))
        return t

    def barrier(self) -> None:
        import torch.distributed as tdist

        tdist.barrier()

    def gather_rows(self, row: list[float]) -> list[list[float]]:
        """Every rank's `row` (same length everywhere), in rank order, on every rank (float64: integers
        below 2**53 come back exact)."""
        import torch

        buf = torch.zeros(self.world_size, len(row), dtype=torch.float64, device=self.device)
        buf[self.rank] = torch.tensor(row, dtype=torch.float64, device=self.device)
        self.all_reduce_sum(buf)
        return buf.cpu().tolist()

    def average_grads(self, params: Iterable[Any]) -> None:
        """Mean of the gradients over ranks (the records' all_reduce AVG: sum / world_size), one all-reduce
        per dtype. A parameter without a gradient on some rank counts as zero there; one without a gradient
        on every rank keeps `grad = None` (the optimizer skips it, as it would in one process)."""
        import torch

        groups: dict[Any, list[Any]] = {}
        for p in params:
            groups.setdefault(p.dtype, []).append(p)
        for dtype, ps in groups.items():
            parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=dtype,
                                                                                device=p.device)
                     for p in ps]
            parts.append(torch.tensor([p.grad is not None for p in ps], dtype=dtype, device=ps[0].device))
            flat = torch.cat(parts)
            self.all_reduce_sum(flat)
            present = flat[-len(ps):].tolist()
            off = 0
            for p, seen in zip(ps, present):
                k = p.numel()
                if seen > 0:
                    g = (flat[off:off + k] / self.world_size).view_as(p)
                    if p.grad is None:
                        p.grad = g.clone()
                    else:
                        p.grad.copy_(g)
                off += k

    def slowest(self, seconds: float) -> float:
        """The largest of the ranks' `seconds` (an eval's wall time is its slowest rank's)."""
        return max(row[0] for row in self.gather_rows([seconds]))

    def check_same(self, value: float, what: str) -> None:
        """Raise on every rank unless all ranks hold the same `value` (e.g. a weight checksum)."""
        rows = self.gather_rows([value])
        vals = [r[0] for r in rows]
        if any(v != vals[0] for v in vals):
            raise RuntimeError(f"{what} differs across ranks: {vals}")


def _torch_device(device: str) -> Any:
    import torch

    return torch.device(device)


def share(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """This rank's contiguous share [lo, hi) of `n` items, split by count as the records split windows."""
    return n * rank // world_size, n * (rank + 1) // world_size


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when this process is one of several torchrun ranks (RANK and WORLD_SIZE
    > 1 set; LOCAL_RANK defaults to RANK), else None. ValueError names a malformed variable."""
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if rank is None or world is None or world <= 1:
        return None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world, rank if local is None else local


def is_torchrun_rank() -> bool:
    """`torchrun_env()` as a yes/no that never raises (a malformed variable is reported where it is used)."""
    try:
        return torchrun_env() is not None
    except ValueError:
        return False


def local_device(device: str) -> str:
    """'cuda' -> 'cuda:<LOCAL_RANK>' under torchrun with WORLD_SIZE > 1 (and make it the current device);
    anything else unchanged."""
    env = torchrun_env()
    if env is None or str(device) != "cuda":
        return device
    import torch

    torch.cuda.set_device(env[2])
    return f"cuda:{env[2]}"


def from_env(device: str) -> Dist | None:
    """When RANK/WORLD_SIZE/LOCAL_RANK are set (torchrun) and WORLD_SIZE > 1: init the process group
    (nccl for cuda, gloo for cpu) once and return Dist; else None. GA_DIST_TIMEOUT (seconds, default 1800)
    bounds how long a rank waits in a collective for the others."""
    global _CREATED
    env = torchrun_env()
    if env is None:
        return None
    rank, world, _ = env
    import torch.distributed as tdist

    dev = local_device(device)
    cuda = str(dev).startswith("cuda")
    if not tdist.is_initialized():
        timeout = datetime.timedelta(seconds=float(os.environ.get("GA_DIST_TIMEOUT", "1800")))
        kw: dict[str, Any] = {}
        if cuda:
            import torch

            kw["device_id"] = torch.device(dev)
        try:
            tdist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world,
                                     timeout=timeout, **kw)
        except TypeError:       # torch without init_process_group(device_id=...)
            tdist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world,
                                     timeout=timeout)
        _CREATED = True
    elif tdist.get_world_size() != world or tdist.get_rank() != rank:
        raise RuntimeError(f"a process group of {tdist.get_world_size()} ranks already exists "
                           f"(this is rank {tdist.get_rank()}), but the environment says {rank} of {world}")
    return Dist(rank, world, dev if cuda else "cpu")


def shutdown() -> None:
    """Destroy the process group if this module created it."""
    global _CREATED
    if not _CREATED:
        return
    import torch.distributed as tdist

    if tdist.is_initialized():
        tdist.destroy_process_group()
    _CREATED = False
