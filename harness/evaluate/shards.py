"""Read parameter-golf token shards (256 x int32 header, magic 20240520, version 1, uint16 body)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAGIC = 20240520
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


class ShardError(Exception):
    """A shard is missing or malformed; the message names the file."""


def read_shard(path: Path) -> np.ndarray:
    path = Path(path)
    try:
        size = path.stat().st_size
        header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    except OSError as exc:
        raise ShardError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if header.size < HEADER_INTS:
        raise ShardError(f"{path}: shorter than the 1024-byte header")
    if int(header[0]) != MAGIC or int(header[1]) != 1:
        raise ShardError(f"{path}: bad header (magic {int(header[0])}, version {int(header[1])}); "
                         f"expected magic {MAGIC}, version 1")
    n = int(header[2])
    if size != HEADER_BYTES + 2 * n:
        raise ShardError(f"{path}: size {size} does not match header ({HEADER_BYTES} + 2*{n} bytes)")
    return np.fromfile(path, dtype="<u2", count=n, offset=HEADER_BYTES)


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """Write a shard in the challenge format (used by tests and benchmarks to make small data)."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() > 65535):
        raise ValueError("token ids must fit uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, 1, tokens.size)
    with open(path, "wb") as fh:
        fh.write(header.tobytes())
        fh.write(tokens.astype("<u2").tobytes())


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
