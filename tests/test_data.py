"""Shards in the challenge format, the local corpus and its splits, decoy val sets, dataset building."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.data.build import build_dataset, main
from harness.data.corpus import documents, split_of
from harness.data.decoys import decoy_counts, make_decoys
from harness.data.shards import (
    HEADER_BYTES,
    MAGIC,
    ShardError,
    read_header,
    read_shard,
    shard_files,
    write_shard,
)
from harness.data.tokenize import BOS_ID, encode_stream, load_tokenizer, train_tokenizer
from tests.conftest import TOKENIZERS

TOKENIZER = TOKENIZERS / "fineweb_1024_bpe.model"
needs_tokenizer = pytest.mark.skipif(not TOKENIZER.is_file(), reason="shared tokenizer missing")


def test_shard_roundtrip_and_layout(tmp_path):
    tokens = np.array([1, 5, 65535, 0, 7], dtype=np.int64)
    path = tmp_path / "fineweb_val_000000.bin"
    write_shard(path, tokens)
    raw = path.read_bytes()
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert header[0] == MAGIC and header[1] == 1 and header[2] == 5 and not header[3:].any()
    assert len(raw) == HEADER_BYTES + 2 * 5
    assert read_shard(path).tolist() == tokens.tolist()


def test_bad_shards_are_named(tmp_path):
    path = tmp_path / "bad.bin"
    write_shard(path, [1, 2, 3])
    path.write_bytes(path.read_bytes() + b"\0\0")
    with pytest.raises(ShardError, match="bad.bin: size"):
        read_header(path)
    path.write_bytes(b"\0" * 2000)
    with pytest.raises(ShardError, match="magic 0"):
        read_header(path)
    path.write_bytes(b"short")
    with pytest.raises(ShardError, match="shorter than"):
        read_header(path)
    with pytest.raises(ShardError, match="must lie in"):
        write_shard(tmp_path / "x.bin", [70000])


def test_shard_files_skip_byte_sidecars(tmp_path):
    for name in ("fineweb_val_000001.bin", "fineweb_val_000000.bin", "fineweb_val_bytes_000000.bin"):
        write_shard(tmp_path / name, [1])
    assert [p.name for p in shard_files(tmp_path, "val")] == ["fineweb_val_000000.bin", "fineweb_val_000001.bin"]


def test_corpus_splits_are_disjoint_and_stable():
    names = {s: [d.name for d, _ in zip(documents(s), range(200))] for s in ("train", "val", "decoy")}
    assert all(names.values())
    assert not set(names["train"]) & set(names["val"])
    assert not set(names["val"]) & set(names["decoy"])
    assert all(split_of(n) == "val" for n in names["val"])
    with pytest.raises(ValueError):
        next(documents("test"))


def test_decoy_counts_scale_down():
    assert decoy_counts([100, 300], None) == [100, 300]
    assert decoy_counts([100, 300], 1000) == [100, 300]
    assert decoy_counts([100, 300], 40) == [10, 30]


@needs_tokenizer
def test_build_dataset_and_decoys(tmp_path):
    out = tmp_path / "data"
    manifest = build_dataset(out, TOKENIZER, train_tokens=30_000, val_tokens=10_000, shard_tokens=20_000)
    folder = out / "datasets" / "fineweb10B_sp1024"
    assert manifest["train_shards"] == 2 and (out / "tokenizers" / TOKENIZER.name).is_file()
    val = read_shard(folder / "fineweb_val_000000.bin")
    assert val.size == 10_000 and val[0] == BOS_ID and (val == BOS_ID).sum() > 1
    assert val.max() < 1024
    sp = load_tokenizer(TOKENIZER)
    text = sp.decode(val[1:200].tolist())
    assert len(text) > 100                      # real text, decodable

    decoy_dir = tmp_path / "decoys"
    made = make_decoys([folder / "fineweb_val_000000.bin"], decoy_dir, sp)
    decoy = read_shard(decoy_dir / "fineweb_val_000000.bin")
    assert read_header(decoy_dir / "fineweb_val_000000.bin").words == read_header(folder / "fineweb_val_000000.bin").words
    assert decoy.size == val.size and decoy[0] == BOS_ID
    assert (decoy != val).mean() > 0.8
    assert made[0].same_position_fraction < 0.2
    small = make_decoys([folder / "fineweb_val_000000.bin"], tmp_path / "small", sp, max_tokens=1000)
    assert small[0].decoy_count == 1000 and read_header(tmp_path / "small" / "fineweb_val_000000.bin").count == 1000


@needs_tokenizer
def test_encode_stream_puts_bos_before_each_document():
    sp = load_tokenizer(TOKENIZER)
    docs = [d for d, _ in zip(documents("val"), range(3))]
    stream = encode_stream(sp, docs)
    starts = np.flatnonzero(stream == BOS_ID)
    assert starts.size == 3 and starts[0] == 0
    def squash(text):
        return (" ".join(text.split())[:40])      # nmt_nfkc folds whitespace, as in the challenge
    assert squash(sp.decode(stream[1:starts[1]].tolist())) == squash(docs[0].text)


def test_tiny_tokenizer_training(tmp_path):
    model = train_tokenizer(documents("train"), 512, tmp_path / "tiny", max_chars=150_000)
    sp = load_tokenizer(model)
    assert sp.vocab_size() == 512 and sp.bos_id() == 1
    assert sp.decode(sp.encode("def main(): return 1")) == "def main(): return 1"


def test_cli_errors_are_clean(tmp_path, capsys):
    assert main(["--tokenizer", str(tmp_path / "missing.model"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.model: tokenizer model not found" in capsys.readouterr().err
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    assert main(["--tokenizer", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not a SentencePiece model" in capsys.readouterr().err


def test_load_tokenizer_missing_is_value_error(tmp_path):
    with pytest.raises(ValueError):
        load_tokenizer(Path(tmp_path / "none.model"))


CASEOPS = TOKENIZERS / "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"


@pytest.mark.skipif(not CASEOPS.is_file(), reason="shared CaseOps tokenizer missing")
def test_sidecar_byte_counts_follow_the_pieces():
    from harness.data.sidecars import sidecar_tables, token_byte_counts

    sp = load_tokenizer(CASEOPS)
    tables = sidecar_tables(CASEOPS, sp)
    text = "\ue001the cat\ue002 sat. \u00e9t\u00e9 42"
    ids = [BOS_ID] + sp.encode(text)
    counts = token_byte_counts(np.array(ids), tables).tolist()
    assert counts[0] == 0                                          # BOS
    pieces = [sp.id_to_piece(i) for i in ids]
    for k, piece in enumerate(pieces[1:], 1):
        if piece in ("\ue001", "\ue002"):
            assert counts[k] == 0, piece                           # a CaseOps operator stands for no byte
    # every byte of the text but the operators is counted exactly once
    assert sum(counts) == len(text.replace("\ue001", "").replace("\ue002", "").encode("utf-8"))


@needs_tokenizer
def test_decoy_sidecars_describe_the_decoy_tokens(tmp_path):
    from harness.data.sidecars import make_decoy_sidecars, sidecar_files, sidecar_tables

    sp = load_tokenizer(TOKENIZER)
    real_dir, decoy_dir = tmp_path / "real", tmp_path / "decoy"
    tokens = encode_stream(sp, documents("val"), max_tokens=3000)
    write_shard(real_dir / "fineweb_val_000000.bin", tokens)
    write_shard(real_dir / "fineweb_val_bytes_000000.bin", np.full(tokens.size, 7))
    make_decoys([real_dir / "fineweb_val_000000.bin"], decoy_dir, sp)
    made = make_decoy_sidecars(sidecar_files(real_dir), decoy_dir, sidecar_tables(TOKENIZER, sp))
    side = read_shard(decoy_dir / "fineweb_val_bytes_000000.bin")
    decoy = read_shard(decoy_dir / "fineweb_val_000000.bin")
    assert made[0].real_count == made[0].decoy_count == side.size == decoy.size == tokens.size
    starts = [int(i) for i in np.flatnonzero(decoy == BOS_ID)] + [decoy.size]
    assert len(starts) >= 3                                 # at least two documents
    for a, b in zip(starts, starts[1:]):                     # each document: its decoded text's bytes
        text = sp.decode(decoy[a + 1: b].tolist())
        assert int(side[a: b].sum()) == len(text.encode("utf-8")), (a, b)
    assert made[0].decoy_bytes == int(side.sum())
    with pytest.raises(ValueError, match="without a val shard"):
        write_shard(real_dir / "fineweb_val_bytes_000009.bin", [0, 1])
        make_decoy_sidecars(sidecar_files(real_dir), decoy_dir, sidecar_tables(TOKENIZER, sp))


def test_case_transform_roundtrips_and_keeps_byte_counts():
    from harness.data.caseops import ALLCAPS, CAPNEXT, ESC, TITLE, decode_case, encode_case

    for text in ["The NASA Launch, iPhone McDonald x A I", "plain text", "X\ue001y", "\u00c9T\u00c9 caf\u00e9",
                 "", "ABC\ndef Ghi JKL mNo"]:
        encoded = encode_case(text)
        assert decode_case(encoded) == text
        assert not any(ch.isupper() for ch in encoded if ch.isascii())
        if not any(ch in text for ch in (TITLE, ALLCAPS, CAPNEXT, ESC)):     # operators stand for no byte
            plain = "".join(ch for ch in encoded if ch not in (TITLE, ALLCAPS, CAPNEXT, ESC))
            assert len(plain.encode()) == len(text.encode())
    assert encode_case("X\ue001y") == f"{TITLE}x{ESC}\ue001y"
    assert encode_case("The NASA iPhone") == f"{TITLE}the {ALLCAPS}nasa i{CAPNEXT}phone"


@pytest.mark.skipif(not CASEOPS.is_file(), reason="shared CaseOps tokenizer missing")
def test_caseops_build_writes_a_matching_byte_sidecar(tmp_path):
    from harness.data.caseops import VARIANT, decode_case

    manifest = build_dataset(tmp_path, CASEOPS, train_tokens=5000, val_tokens=4000, shard_tokens=5000, caseops=True)
    folder = tmp_path / "datasets" / VARIANT
    val, side = read_shard(folder / "fineweb_val_000000.bin"), read_shard(folder / "fineweb_val_bytes_000000.bin")
    assert manifest["caseops"] and side.size == val.size == manifest["val_tokens"]
    sp = load_tokenizer(CASEOPS)
    assert (val == sp.piece_to_id("\ue001")).any()                 # the text went through the case transform
    starts = [int(i) for i in np.flatnonzero(val == BOS_ID)] + [val.size]
    for a, b in zip(starts, starts[1:]):                           # each document: its original text's bytes
        original = decode_case(sp.decode(val[a + 1: b].tolist()))
        assert int(side[a: b].sum()) == len(original.encode("utf-8")), (a, b)
