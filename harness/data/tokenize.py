"""Tokenize local documents into challenge token streams (BOS=1 before every document)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from harness.data.corpus import Document

BOS_ID = 1


def load_tokenizer(path: Path):
    """A SentencePiece processor for `path`, with a clear error for a missing or broken model."""
    import sentencepiece as spm

    if not path.is_file():
        raise ValueError(f"{path}: tokenizer model not found")
    try:
        sp = spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a SentencePiece model ({exc})") from None
    if sp.bos_id() != BOS_ID:
        raise ValueError(f"{path}: bos_id is {sp.bos_id()}, the challenge format needs {BOS_ID}")
    if sp.vocab_size() > 65536:
        raise ValueError(f"{path}: vocab {sp.vocab_size()} does not fit uint16 shards")
    return sp


BYTE_FALLBACK_MIN_VOCAB = 300     # 256 byte pieces + 4 special + room for the text's characters and merges
SPECIAL_PIECES = 4                 # pad, bos, eos, unk


def train_tokenizer(docs: Iterable[Document], vocab_size: int, out_prefix: Path, max_chars: int = 2_000_000) -> Path:
    """Train a small BPE SentencePiece model with the challenge's trainer settings; returns the .model path.

    Below BYTE_FALLBACK_MIN_VOCAB there is no room for the 256 byte pieces: the model then keeps the most
    frequent characters that fit (the rest encode as unk) and has no byte fallback. ValueError when
    `vocab_size` is too small even for that, or sentencepiece refuses the settings."""
    import sentencepiece as spm

    if vocab_size < SPECIAL_PIECES + 8:
        raise ValueError(f"tokenizer vocabulary {vocab_size} is too small (at least {SPECIAL_PIECES + 8})")
    lines: list[str] = []
    used = 0
    for doc in docs:
        for line in doc.text.splitlines():
            if line.strip():
                used += len(line)
                lines.append(line)
        if used >= max_chars:
            break
    settings = {"byte_fallback": True, "character_coverage": 0.995}
    if vocab_size < BYTE_FALLBACK_MIN_VOCAB:
        lines = _common_characters_only(lines, vocab_size)
        settings = {"byte_fallback": False, "character_coverage": 1.0}
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=str(out_prefix), vocab_size=vocab_size, model_type="bpe",
            split_digits=True, normalization_rule_name="nmt_nfkc", add_dummy_prefix=False,
            pad_id=0, bos_id=1, eos_id=2, unk_id=3, minloglevel=2, **settings)
    except RuntimeError as exc:
        reason = str(exc).split("] ", 1)[-1]
        raise ValueError(f"sentencepiece cannot train a {vocab_size}-piece tokenizer on this text: {reason}") from None
    return out_prefix.with_suffix(".model")


def _common_characters_only(lines: list[str], vocab_size: int) -> list[str]:
    """The lines with only the most frequent characters, about half the vocabulary's worth (the other half
    is left for merges); sentencepiece then needs no byte pieces and encodes any other character as unk."""
    from collections import Counter

    counts = Counter(ch for line in lines for ch in line if not ch.isspace())
    keep = {ch for ch, _ in counts.most_common(max(1, (vocab_size - SPECIAL_PIECES) // 2))} | {" "}
    kept = ("".join(ch for ch in line if ch in keep).strip() for line in lines)
    return [line for line in kept if line]


def encode_stream(sp, docs: Iterable[Document], max_tokens: int | None = None, cycle: bool = False,
                  transform: Callable[[str], str] | None = None) -> np.ndarray:
    """Concatenate [BOS] + ids(doc) for each document, up to `max_tokens` (cycling the docs if asked);
    `transform` rewrites each text first (the CaseOps case operators)."""
    chunks: list[np.ndarray] = []
    total = 0
    pool = list(docs) if cycle else docs
    while True:
        added = 0
        for doc in pool:
            ids = np.asarray([BOS_ID] + sp.encode(transform(doc.text) if transform else doc.text), dtype=np.uint16)
            chunks.append(ids)
            total += ids.size
            added += ids.size
            if max_tokens is not None and total >= max_tokens:
                return np.concatenate(chunks)[:max_tokens]
        if not cycle or added == 0 or max_tokens is None:
            break
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint16)
