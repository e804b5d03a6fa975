"""CaseOps byte sidecars for decoy val shards (EVAL_INTERNALS §1, §2).

Records of the `sp8192_lossless_caps_caseops_v1_reserved` variant read `fineweb_val_bytes_NNNNNN.bin` beside
`fineweb_val_NNNNNN.bin`: the same shard layout, one uint16 per token holding the token's original UTF-8
byte count (0 for BOS and the other specials), and BPB divides by their sum. In the sandbox each real sidecar
gets a decoy twin: same name and header layout, one entry per token of the decoy val shard of the same
number, each entry the byte count of that decoy token by the tokenizer's pieces (EVAL_INTERNALS §2: piece
bytes without the leading "▁", 1 for a byte-fallback piece, 0 for control/unknown/unused, plus the space
unless the previous token is a boundary). CaseOps operator characters (private use, U+E000..U+F8FF) stand
for no original byte and count 0 (so does an escaped literal one, which the real sidecar counts: such
characters do not occur in the local text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.bytetables import ByteTables, build_byte_tables
from harness.data.shards import read_header, read_shard, write_shard

VAL_PREFIX, SIDECAR_PREFIX = "fineweb_val_", "fineweb_val_bytes_"


def _is_operator(ch: str) -> bool:
    return "\ue000" <= ch <= "\uf8ff"


@dataclass(frozen=True)
class DecoySidecar:
    name: str
    partner: str                     # the val shard whose tokens it describes
    real_count: int
    decoy_count: int
    decoy_bytes: int                 # sum of the entries (the decoy val set's byte count)


def sidecar_files(folder: Path) -> list[Path]:
    """The CaseOps byte sidecars `fineweb_val_bytes_*.bin` of a data folder, sorted."""
    return sorted(folder.glob(f"{SIDECAR_PREFIX}*.bin"))


def partner_name(sidecar: Path) -> str:
    """`fineweb_val_bytes_000003.bin` -> `fineweb_val_000003.bin`."""
    return VAL_PREFIX + sidecar.name[len(SIDECAR_PREFIX):]


def sidecar_tables(tokenizer: Path, sp) -> ByteTables:
    """The byte tables of EVAL_INTERNALS §2, with CaseOps operator characters counted as 0 bytes."""
    tables = build_byte_tables(tokenizer)
    base = tables.base_bytes.copy()
    for i in range(sp.vocab_size()):
        if tables.is_boundary[i] or sp.is_byte(i):
            continue
        piece = sp.id_to_piece(i)
        if any(_is_operator(ch) for ch in piece):
            kept = "".join(ch for ch in piece.removeprefix("\u2581") if not _is_operator(ch))
            base[i] = len(kept.encode("utf-8"))
    return ByteTables(base, tables.has_leading_space, tables.is_boundary)


def token_byte_counts(tokens: np.ndarray, tables: ByteTables) -> np.ndarray:
    """One uint16 per token: its bytes as a target after the token before it (the first: no leading space)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size and int(tokens.max()) >= tables.size:
        raise ValueError(f"token id {int(tokens.max())} outside the tokenizer's {tables.size} ids")
    out = np.zeros(tokens.size, dtype=np.int64)
    if tokens.size:
        out[0] = tables.base_bytes[tokens[0]]
        out[1:] = tables.target_bytes(tokens[:-1], tokens[1:])
    return out.astype(np.uint16)


def make_decoy_sidecars(real_sidecars: list[Path], decoy_dir: Path, tables: ByteTables) -> list[DecoySidecar]:
    """Write a decoy of each real sidecar into `decoy_dir`, beside the decoy val shard of the same number."""
    out: list[DecoySidecar] = []
    for real in real_sidecars:
        header = read_header(real)
        partner = decoy_dir / partner_name(real)
        if not partner.is_file():
            raise ValueError(f"{real}: byte sidecar without a val shard {partner.name} beside it")
        counts = token_byte_counts(read_shard(partner), tables)
        write_shard(decoy_dir / real.name, counts)
        out.append(DecoySidecar(real.name, partner.name, header.count, int(counts.size), int(counts.sum())))
    return out
