"""The hardware a run was measured on, named in every time finding: a budget overrun is a violation only
when measured on the reference hardware (8 H100s); elsewhere it is a warning that says where it was seen."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from harness.limits import REFERENCE_GPUS

REFERENCE_MODEL = "H100"


@dataclass(frozen=True)
class Hardware:
    gpus: int
    models: tuple[str, ...] = ()           # names nvidia-smi gives, one per visible GPU (empty: unknown)

    @property
    def reference(self) -> bool:
        """8 or more GPUs, at least 8 of them H100s by name."""
        return self.gpus >= REFERENCE_GPUS and sum(REFERENCE_MODEL in m for m in self.models) >= REFERENCE_GPUS

    @property
    def label(self) -> str:
        if self.gpus <= 0:
            return "on the CPU"
        names = sorted(set(self.models))
        model = names[0] if len(names) == 1 else (" / ".join(names) if names else "GPU model unknown")
        return f"on {self.gpus} GPU(s) ({model})"


def gpu_models() -> tuple[str, ...]:
    """Names of the visible GPUs by nvidia-smi (empty when it is missing or fails)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        done = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in done.stdout.splitlines() if line.strip()) if done.returncode == 0 else ()


def detect(gpus: int) -> Hardware:
    return Hardware(gpus, gpu_models() if gpus > 0 else ())
