"""Where `--data` points: the same for `run`, `eval` and `trace`.

`--data` is the folder `python -m harness.data.build --out` wrote (or a parameter-golf `data/` folder), or
any folder below it down to the shard folder itself: the shards used are in DATA itself, else in the one
folder under DATA holding `fineweb_<split>_*.bin` (e.g. DATA/datasets/fineweb10B_sp1024).
"""

from __future__ import annotations

from pathlib import Path

from harness.data.shards import shard_files


class DataFolderError(ValueError):
    """`--data` holds no shard folder, or several; the message says which."""


def shard_folder(data: Path, split: str = "val", vocab_size: int | None = None) -> Path:
    """The folder holding `fineweb_<split>_*.bin` at or under `data` (the sp<vocab_size> one when several)."""
    if data.is_dir() and shard_files(data, split):
        return data
    found = sorted({p.parent for p in data.glob(f"**/fineweb_{split}_*.bin") if "_bytes_" not in p.name})
    if vocab_size is not None and len(found) > 1:
        found = [f for f in found if f.name == f"fineweb10B_sp{vocab_size}"] or found
    if len(found) == 1:
        return found[0]
    if found:
        raise DataFolderError(f"{data}: several shard folders ({', '.join(str(f) for f in found[:4])}); "
                              f"give one of them as --data")
    raise DataFolderError(f"{data}: no fineweb_{split}_*.bin shards at or under it")
