"""The challenge's hard numbers, defined once: every rule, the sandbox and the CLI defaults read them here."""

from __future__ import annotations

from typing import Any

# README FAQ: "The cap is decimal 16MB, i.e. 16,000,000 total bytes, not 16 MiB / 16,777,216 bytes."
SIZE_CAP_BYTES = 16_000_000
# README: "must run in under 10 minutes on 8xH100s"; evaluation has its own 10 minutes on top.
TRAIN_BUDGET_S = 600.0
EVAL_BUDGET_S = 600.0
# The hardware the budgets are stated for.
REFERENCE_GPUS = 8
# The track the 600 s budgets bind.
TEN_MINUTE_TRACK = "10min-16mb"


def is_ten_minute(sub: Any) -> bool:
    """Whether a submission (anything with a `track`) is on the 10-minute track."""
    return sub.track == TEN_MINUTE_TRACK
