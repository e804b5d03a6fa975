"""Options that change how a submission is judged (not how it is printed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SotaReference:
    """The record a submission must beat: per-seed scores plus how they were measured."""

    name: str
    val_bpb: tuple[float, ...]
    val_loss: tuple[float, ...] = ()
    tokenizer: str | None = None

    def key(self) -> str:
        return f"{self.name}|{self.val_bpb}|{self.val_loss}|{self.tokenizer}"


@dataclass(frozen=True)
class AuditOptions:
    rules_as_of: dt.date | None = None
    sota: SotaReference | None = None
    # extra settings (e.g. env overrides given on the command line) that detectors may consult
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return f"{self.rules_as_of}|{self.sota.key() if self.sota else None}|{sorted(self.extra.items())}"
