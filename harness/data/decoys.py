"""Decoy validation shards: real tokenized text with the real val shards' names, headers and token counts.

A sandboxed run sees these in place of the real val shards, so a script that reads val at start-up or
trains on it only ever touches decoy tokens. The decoy text is the `decoy` split of the local corpus,
disjoint from the documents used for train and (local) val shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.corpus import documents
from harness.data.shards import read_header, read_shard, write_shard
from harness.data.tokenize import encode_stream


@dataclass(frozen=True)
class DecoyFile:
    name: str
    real_count: int
    decoy_count: int
    same_position_fraction: float   # share of positions where the decoy token equals the real one


def decoy_counts(real_counts: list[int], max_tokens: int | None) -> list[int]:
    """Per-file decoy token counts: the real counts, or scaled down to total at most `max_tokens`."""
    total = sum(real_counts)
    if max_tokens is None or max_tokens >= total:
        return list(real_counts)
    return [max(2, count * max_tokens // total) for count in real_counts]


def decoy_pool(sp, min_tokens: int = 1 << 20, transform: Callable[[str], str] | None = None) -> np.ndarray:
    """Tokenized decoy-split documents, at least `min_tokens` of them when the split allows."""
    return encode_stream(sp, documents("decoy"), max_tokens=min_tokens, transform=transform)


def make_decoys(real_files: list[Path], out_dir: Path, sp, max_tokens: int | None = None,
                transform: Callable[[str], str] | None = None) -> list[DecoyFile]:
    """Write one decoy per real val shard into `out_dir` (same file name); returns what was written.
    `transform` rewrites the decoy text before tokenizing (CaseOps data: harness.data.caseops.encode_case)."""
    headers = [read_header(p) for p in real_files]
    counts = decoy_counts([h.count for h in headers], max_tokens)
    pool = decoy_pool(sp, min(sum(counts), 1 << 20), transform)
    if pool.size == 0:
        raise ValueError("the decoy text source produced no tokens")
    stream = np.resize(pool, sum(counts))    # repeats the pool when more tokens are needed
    out: list[DecoyFile] = []
    offset = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, count in zip(real_files, counts):
        tokens = stream[offset: offset + count].copy()
        offset += count
        tokens[0] = 1     # a shard starts at a document boundary
        write_shard(out_dir / path.name, tokens)
        real = read_shard(path)
        n = min(real.size, tokens.size)
        same = float(np.mean(real[:n] == tokens[:n])) if n else 0.0
        out.append(DecoyFile(path.name, int(real.size), int(count), round(same, 6)))
    return out
