"""Artifact checks: every codec the records use decompresses; bombs and garbage are refused within caps."""

from __future__ import annotations

import io
import lzma
import os
import zipfile
import zlib

import pytest

from harness.sandbox.artifact import decompress_check, find_artifacts, measure_artifact


def _torch_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", os.urandom(20_000) + bytes(5_000))
    return buf.getvalue()


def _codecs():
    import brotli
    import zstandard

    payload = _torch_like()
    return {
        "zlib": zlib.compress(payload, 9),
        "zstd": zstandard.ZstdCompressor(level=22).compress(payload),
        "xz": lzma.compress(payload),
        "lzma-raw": lzma.compress(payload, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]),
        "brotli": brotli.compress(payload, quality=11),
    }, payload


@pytest.mark.parametrize("codec", ["zlib", "zstd", "xz", "lzma-raw", "brotli"])
def test_each_codec_round_trips(codec):
    blobs, payload = _codecs()
    got = decompress_check(blobs[codec])
    assert got.ok and got.codec == codec and got.out_bytes == len(payload) and got.torch_zip


def test_bomb_stops_at_the_cap():
    bomb = zlib.compress(bytes(50 << 20), 9)          # 50 MiB of zeros in ~50 KB
    got = decompress_check(bomb, max_bytes=1 << 30, max_ratio=64)
    assert not got.ok and "passed the cap" in got.detail
    got = decompress_check(bomb, max_bytes=1 << 20, max_ratio=10_000)
    assert not got.ok and got.out_bytes == 1 << 20


def test_garbage_and_truncation_are_reported():
    assert not decompress_check(os.urandom(4096)).ok
    blob = zlib.compress(_torch_like(), 9)
    got = decompress_check(blob[: len(blob) // 2])
    assert not got.ok


def test_byte_shuffled_payload_is_recognised():
    import brotli

    got = decompress_check(brotli.compress(b"BSHF" + os.urandom(5000)))
    assert got.ok and "BSHF" in got.detail and not got.torch_zip


def test_find_and_measure(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "final_model.pt").write_bytes(b"raw, not counted")
    art = tmp_path / "runs" / "x" / "final_model.int6.ptz"
    art.write_bytes(lzma.compress(_torch_like()))
    assert find_artifacts(tmp_path) == [art]
    measured = measure_artifact(art)
    assert measured.bytes == art.stat().st_size and measured.check.ok and measured.check.codec == "xz"
