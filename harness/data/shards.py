"""Read and write token shards in the challenge format (EVAL_INTERNALS §1).

A shard is 256 little-endian int32 header words (magic 20240520, version 1, token count, zeros) followed by
`count` little-endian uint16 token ids; the file size must be exactly 1024 + 2 * count bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MAX_VOCAB = 65536


class ShardError(ValueError):
    """A file is not a valid shard; the message names the file and the problem."""


@dataclass(frozen=True)
class ShardHeader:
    magic: int
    version: int
    count: int
    words: tuple[int, ...]


def write_shard(path: Path | str, tokens: np.ndarray | list[int]) -> int:
    """Write `tokens` as a shard at `path` (a Path or a str); returns the number of tokens written."""
    path = Path(path)
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ShardError(f"{path}: tokens must be one-dimensional, got shape {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= MAX_VOCAB):
        raise ShardError(f"{path}: token ids must lie in [0, {MAX_VOCAB})")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = MAGIC, VERSION, arr.size
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(header.tobytes())
        handle.write(arr.astype("<u2").tobytes())
    return int(arr.size)


def read_header(path: Path) -> ShardHeader:
    """The header of a shard, checked against the file size."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            raw = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise ShardError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: {len(raw)} bytes, shorter than the {HEADER_BYTES}-byte header")
    words = np.frombuffer(raw, dtype="<i4")
    header = ShardHeader(int(words[0]), int(words[1]), int(words[2]), tuple(int(w) for w in words))
    if header.magic != MAGIC:
        raise ShardError(f"{path}: bad header: magic {header.magic}, expected {MAGIC}")
    if header.version != VERSION:
        raise ShardError(f"{path}: bad header: version {header.version}, expected {VERSION}")
    if size != HEADER_BYTES + 2 * header.count:
        raise ShardError(f"{path}: size {size} does not match header count {header.count} "
                         f"(expected {HEADER_BYTES + 2 * header.count})")
    return header


def read_shard(path: Path) -> np.ndarray:
    """All tokens of a shard as uint16."""
    header = read_header(path)
    return np.fromfile(path, dtype="<u2", count=header.count, offset=HEADER_BYTES)


def shard_files(folder: Path, split: str) -> list[Path]:
    """`fineweb_{split}_*.bin` files in `folder`, sorted, without CaseOps `_bytes_` sidecars."""
    return sorted(p for p in folder.glob(f"fineweb_{split}_*.bin") if "_bytes_" not in p.name)
