"""harness.evaluate.fastcodec: records' own compressor calls run at a low level inside the block, in the
same format (the stock decompressors read them back byte for byte), and the originals come back after."""

from __future__ import annotations

import lzma
import os
import zlib

import pytest

from harness.evaluate.fastcodec import BROTLI_QUALITY, LZMA_PRESET, ZLIB_LEVEL, ZSTD_LEVEL, fast_compressors

brotli = pytest.importorskip("brotli")
zstandard = pytest.importorskip("zstandard")

DATA = (b"weights " * 3000) + os.urandom(20000) + bytes(range(256)) * 40
STOCK = {"lzma": lzma.compress, "zlib": zlib.compress, "brotli": brotli.compress,
         "zstd": zstandard.compress, "zstd_cls": zstandard.ZstdCompressor}


def _stream(obj) -> bytes:
    return obj.compress(DATA) + obj.flush()


def _record_calls() -> dict[str, bytes]:
    """The calls records make (high levels, keyword and positional)."""
    return {
        "lzma": lzma.compress(DATA, preset=9),
        "lzma_default": lzma.compress(DATA),
        "lzma_extreme": lzma.compress(DATA, lzma.FORMAT_XZ, -1, 9 | lzma.PRESET_EXTREME),
        "lzma_alone": lzma.compress(DATA, format=lzma.FORMAT_ALONE, preset=6),
        "zlib": zlib.compress(DATA, 9),
        "zlib_default": zlib.compress(DATA),
        "brotli": brotli.compress(DATA, quality=11),
        "brotli_lgwin": brotli.compress(DATA, quality=11, lgwin=24),
        "brotli_positional": brotli.compress(DATA, brotli.MODE_GENERIC, 11),
        "zstd_cls": zstandard.ZstdCompressor(level=22).compress(DATA),
        "zstd_stream": _stream(zstandard.ZstdCompressor(level=19).compressobj()),
        "zstd": zstandard.compress(DATA, 22),
    }


def test_patched_output_is_the_stock_codec_at_the_fast_level_and_decompresses_with_stock():
    with fast_compressors() as patched:
        out = _record_calls()
    assert set(patched) == {"lzma.compress", "zlib.compress", "brotli.compress", "zstandard.compress",
                            "zstandard.ZstdCompressor"}
    fast_lzma = lzma.compress(DATA, preset=LZMA_PRESET)
    assert out["lzma"] == out["lzma_default"] == out["lzma_extreme"] == fast_lzma
    assert out["lzma_alone"] == lzma.compress(DATA, format=lzma.FORMAT_ALONE, preset=LZMA_PRESET)
    assert out["zlib"] == out["zlib_default"] == zlib.compress(DATA, ZLIB_LEVEL)
    assert out["brotli"] == out["brotli_positional"] == brotli.compress(DATA, quality=BROTLI_QUALITY)
    assert out["brotli_lgwin"] == brotli.compress(DATA, quality=BROTLI_QUALITY, lgwin=24)
    assert out["zstd_cls"] == out["zstd"] == zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(DATA)
    assert out["zstd_cls"] != zstandard.ZstdCompressor(level=22).compress(DATA)  # it really was lowered
    for name, blob in out.items():  # the format is unchanged: the stock decompressors read it back
        if name.startswith("lzma"):
            back = lzma.decompress(blob)
        elif name.startswith("zlib"):
            back = zlib.decompress(blob)
        elif name.startswith("brotli"):
            back = brotli.decompress(blob)
        elif name == "zstd_stream":
            back = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
        else:
            back = zstandard.ZstdDecompressor().decompress(blob)
        assert back == DATA, name


def test_filters_and_low_levels_are_left_alone():
    filters = [{"id": lzma.FILTER_DELTA, "dist": 4}, {"id": lzma.FILTER_LZMA2, "preset": 9}]
    raw = [{"id": lzma.FILTER_LZMA2, "preset": 9}]

    def calls() -> tuple[bytes, ...]:
        return (lzma.compress(DATA, filters=filters),
                lzma.compress(DATA, format=lzma.FORMAT_RAW, filters=raw), lzma.compress(DATA, preset=0), zlib.compress(DATA, 0), brotli.compress(DATA, quality=2),
                zstandard.compress(DATA, -5))

    with fast_compressors():
        got = calls()
    assert got == calls()
    assert lzma.decompress(got[1], format=lzma.FORMAT_RAW, filters=raw) == DATA


def _current() -> dict:
    return {"lzma": lzma.compress, "zlib": zlib.compress, "brotli": brotli.compress,
            "zstd": zstandard.compress, "zstd_cls": zstandard.ZstdCompressor}


def test_originals_restored_on_exit_on_error_and_when_nested():
    with fast_compressors():
        assert _current()["lzma"] is not STOCK["lzma"]
        inner_patched = None
        with fast_compressors():
            inner_patched = _current()
        assert _current() != STOCK and _current()["zlib"] is not inner_patched["zlib"]
    assert _current() == STOCK
    with pytest.raises(RuntimeError):
        with fast_compressors():
            raise RuntimeError("boom")
    assert _current() == STOCK
