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


def train_tokenizer(docs: Iterable[Document], vocab_size: int, out_prefix: Path, max_chars: int = 2_000_000) -> Path:
    """Train a small BPE SentencePiece model with the challenge's trainer settings; returns the .model path."""
    import sentencepiece as spm

    def sentences():
        used = 0
        for doc in docs:
            for line in doc.text.splitlines():
                if line.strip():
                    used += len(line)
                    yield line
            if used >= max_chars:
                return

    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(), model_prefix=str(out_prefix), vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, split_digits=True, normalization_rule_name="nmt_nfkc", add_dummy_prefix=False,
        pad_id=0, bos_id=1, eos_id=2, unk_id=3, character_coverage=0.995, minloglevel=2)
    return out_prefix.with_suffix(".model")


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
