"""Build a small challenge-format dataset from the local text source with a SentencePiece model.

    python -m harness.data.build --tokenizer fineweb_1024_bpe.model --out local/data \
        --train-tokens 4000000 --val-tokens 500000

writes `OUT/datasets/fineweb10B_sp<V>/fineweb_{train,val}_NNNNNN.bin`, `OUT/tokenizers/<model>` and
`OUT/datasets/fineweb10B_sp<V>/manifest.json` (source, counts, split policy).

`--caseops` (with the CaseOps tokenizer) writes the `fineweb10B_sp8192_lossless_caps_caseops_v1_reserved`
folder instead: text rewritten with harness.data.caseops.encode_case before tokenizing, and a byte sidecar
`fineweb_val_bytes_000000.bin` beside the val shard (EVAL_INTERNALS §1).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.data import caseops as case
from harness.data.corpus import SOURCE_NAME, documents, stdlib_root
from harness.data.shards import write_shard
from harness.data.sidecars import sidecar_tables, token_byte_counts
from harness.data.tokenize import encode_stream, load_tokenizer, train_tokenizer


def variant_dir(out: Path, vocab_size: int, caseops: bool = False) -> Path:
    return out / "datasets" / (case.VARIANT if caseops else f"fineweb10B_sp{vocab_size}")


def build_dataset(out: Path, tokenizer: Path, train_tokens: int, val_tokens: int,
                  shard_tokens: int = 4_000_000, caseops: bool = False) -> dict[str, Any]:
    """Tokenize the local corpus into train/val shards under `out`; returns the manifest."""
    sp = load_tokenizer(tokenizer)
    transform = case.encode_case if caseops else None
    folder = variant_dir(out, sp.vocab_size(), caseops)
    folder.mkdir(parents=True, exist_ok=True)
    (out / "tokenizers").mkdir(parents=True, exist_ok=True)
    if tokenizer.resolve() != (out / "tokenizers" / tokenizer.name).resolve():
        shutil.copyfile(tokenizer, out / "tokenizers" / tokenizer.name)
    val = encode_stream(sp, documents("val"), max_tokens=val_tokens, cycle=True, transform=transform)
    write_shard(folder / "fineweb_val_000000.bin", val)
    if caseops:
        write_shard(folder / "fineweb_val_bytes_000000.bin", token_byte_counts(val, sidecar_tables(tokenizer, sp)))
    train = encode_stream(sp, documents("train"), max_tokens=train_tokens, cycle=True, transform=transform)
    files = []
    for i, start in enumerate(range(0, max(train.size, 1), shard_tokens)):
        chunk = train[start: start + shard_tokens]
        if chunk.size == 0:
            break
        write_shard(folder / f"fineweb_train_{i:06d}.bin", chunk)
        files.append(chunk.size)
    manifest = {
        "source": SOURCE_NAME, "source_root": str(stdlib_root()), "tokenizer": tokenizer.name,
        "vocab_size": sp.vocab_size(), "split_policy": "sha1(doc name) % 10: 0 val, 1 decoy, else train",
        "val_tokens": int(val.size), "train_tokens": int(train.size), "train_shards": len(files),
        "caseops": caseops,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.data.build", description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", type=Path, help="SentencePiece .model (bos_id 1)")
    parser.add_argument("--train-tiny-tokenizer", type=int, metavar="VOCAB",
                        help="instead of --tokenizer, train a BPE model of this vocab on the train split")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-tokens", type=int, default=4_000_000)
    parser.add_argument("--val-tokens", type=int, default=500_000)
    parser.add_argument("--shard-tokens", type=int, default=4_000_000)
    parser.add_argument("--caseops", action="store_true",
                        help="CaseOps variant: case operators in the text, a val byte sidecar (CaseOps tokenizer)")
    args = parser.parse_args(argv)
    try:
        if args.train_tiny_tokenizer:
            tok = train_tokenizer(documents("train"), args.train_tiny_tokenizer,
                                  args.out / "tokenizers" / f"stdlib_{args.train_tiny_tokenizer}_bpe")
        elif args.tokenizer:
            tok = args.tokenizer
        else:
            parser.error("give --tokenizer or --train-tiny-tokenizer")
        manifest = build_dataset(args.out, tok, args.train_tokens, args.val_tokens, args.shard_tokens,
                                 args.caseops)
    except (ValueError, OSError) as exc:
        print(f"golfaudit: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
