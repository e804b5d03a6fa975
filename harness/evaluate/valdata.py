"""Validation data for the reference eval: token shards and CaseOps byte sidecars of a data folder.

The shard format itself (read, write, header checks) lives in harness.data.shards; it is re-exported here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.shards import HEADER_BYTES, HEADER_INTS, MAGIC, ShardError, read_shard, write_shard

__all__ = ["HEADER_BYTES", "HEADER_INTS", "MAGIC", "ShardError", "load_tokens", "read_shard", "val_files",
           "write_shard"]


def val_files(data: Path, split: str = "val") -> tuple[list[Path], list[Path]]:
    """(token shards, CaseOps byte sidecars) for `split` in folder `data`, sorted; a file is allowed too."""
    data = Path(data)
    if data.is_file():
        return [data], []
    if not data.is_dir():
        raise ShardError(f"{data}: no such data folder")
    files = sorted(data.glob(f"fineweb_{split}_*.bin"))
    tokens = [f for f in files if "_bytes_" not in f.name]
    sidecars = [f for f in files if "_bytes_" in f.name]
    if not tokens:
        raise ShardError(f"{data}: no fineweb_{split}_*.bin shards")
    return tokens, sidecars


def load_tokens(data: Path, max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Validation tokens (and per-token CaseOps bytes, if a sidecar exists) and the files read.

    `max_tokens` keeps the first N+1 tokens (N targets) for reduced runs.
    """
    tok_files, side_files = val_files(data)
    tokens = np.concatenate([read_shard(f) for f in tok_files])
    side = np.concatenate([read_shard(f) for f in side_files]) if side_files else None
    if side is not None and side.size != tokens.size:
        raise ShardError(f"{data}: byte sidecar has {side.size} entries for {tokens.size} tokens")
    if max_tokens is not None:
        tokens = tokens[: max_tokens + 1]
        side = side[: max_tokens + 1] if side is not None else None
    if tokens.size < 2:
        raise ShardError(f"{data}: fewer than 2 tokens")
    return tokens, side, [str(f) for f in tok_files + side_files]
