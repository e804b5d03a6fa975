"""Per-token byte counts for BPB: SentencePiece piece tables, or a CaseOps byte sidecar.

The rule (EVAL_INTERNALS §2): a target's bytes are the UTF-8 length of its piece without a leading "▁",
1 for a byte-fallback piece, 0 for control/unknown/unused pieces, plus one byte for the leading space
unless the previous token is a boundary (a control/unknown/unused token such as BOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPACE = "\u2581"


class TokenizerError(Exception):
    """The tokenizer file cannot be read; the message names the file."""


@dataclass(frozen=True)
class ByteTables:
    base_bytes: np.ndarray          # int16 [V]
    has_leading_space: np.ndarray   # bool [V]
    is_boundary: np.ndarray         # bool [V]

    @property
    def size(self) -> int:
        return int(self.base_bytes.shape[0])

    def target_bytes(self, prev: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        """Bytes of each target token `tgt` given the token before it, `prev` (same shapes)."""
        prev = np.asarray(prev, dtype=np.int64)
        tgt = np.asarray(tgt, dtype=np.int64)
        extra = self.has_leading_space[tgt] & ~self.is_boundary[prev]
        return self.base_bytes[tgt].astype(np.int64) + extra.astype(np.int64)


def load_sentencepiece(path: Path):
    """Load a SentencePiece model, with an error naming the file."""
    import sentencepiece as spm

    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"{path}: no such tokenizer file")
    sp = spm.SentencePieceProcessor()
    try:
        ok = sp.Load(str(path))
    except (OSError, RuntimeError) as exc:
        raise TokenizerError(f"{path}: not a SentencePiece model ({exc})") from None
    if not ok:
        raise TokenizerError(f"{path}: not a SentencePiece model")
    return sp


def build_byte_tables(tokenizer: Path, vocab_size: int | None = None) -> ByteTables:
    """Byte tables for a SentencePiece model; the table covers max(model vocab, vocab_size) ids."""
    sp = load_sentencepiece(tokenizer)
    n = sp.vocab_size()
    size = max(n, vocab_size or 0)
    base = np.zeros(size, dtype=np.int16)
    space = np.zeros(size, dtype=bool)
    boundary = np.ones(size, dtype=bool)
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith(SPACE):
            space[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return ByteTables(base, space, boundary)
