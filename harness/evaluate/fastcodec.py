"""Fast compression for runs where a record's artifact is only a vehicle (adapter coverage, benchmarks).

    with fast_compressors():
        record.serialize(...)      # its own lzma/brotli/zstd/zlib calls, at a low level

Inside the block `lzma.compress` runs at preset 1 (calls that give `filters` are left alone: the filter
chain is the format), `brotli.compress` at quality 4, zstandard at level 1 (`zstandard.compress` and
`zstandard.ZstdCompressor`) and `zlib.compress` at level 1. A level is only ever lowered, never raised
(a record asking zlib level 0 keeps it). The stream formats, and so the records' own decompression, are
unchanged: only the artifact's size and the time spent making it are. The originals are restored on exit.
Not thread-safe: it patches module attributes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LZMA_PRESET, BROTLI_QUALITY, ZSTD_LEVEL, ZLIB_LEVEL = 1, 4, 1, 1
_LZMA_ARGS = ("format", "check", "preset", "filters")   # lzma.compress(data, format, check, preset, filters)
_BROTLI_ARGS = ("mode", "quality", "lgwin", "lgblock")  # brotli.compress(data, mode, quality, lgwin, lgblock)


def _lower(level: int | None, fast: int, default: int) -> int:
    """`level` (None: the codec's default) lowered to at most `fast`; 0..fast stays as asked."""
    level = default if level is None else level
    return level if 0 <= level <= fast else fast


def _named(args: tuple, kwargs: dict, names: tuple[str, ...]) -> dict:
    return {**dict(zip(names, args)), **kwargs}


def _fast_lzma(orig: Callable) -> Callable:
    import lzma

    def compress(data, *args, **kwargs):
        k = _named(args, kwargs, _LZMA_ARGS)
        if k.get("filters") is None and k.get("format", lzma.FORMAT_XZ) != lzma.FORMAT_RAW:
            k["preset"] = _lower(k.get("preset"), LZMA_PRESET, 6)
        return orig(data, **k)
    return compress


def _fast_zlib(orig: Callable) -> Callable:
    def compress(data, level=-1, wbits=15):
        return orig(data, _lower(None if level == -1 else level, ZLIB_LEVEL, 6), wbits)
    return compress


def _fast_brotli(orig: Callable) -> Callable:
    def compress(data, *args, **kwargs):
        k = _named(args, kwargs, _BROTLI_ARGS)
        k["quality"] = _lower(k.get("quality"), BROTLI_QUALITY, 11)
        return orig(data, **k)
    return compress


def _zstd_level(level: int) -> int:
    """zstd: 0 means the default (3); negative levels are the fast ones and stay."""
    return level if level < 0 else _lower(level or 3, ZSTD_LEVEL, 3)


def _fast_zstd_compress(orig: Callable) -> Callable:
    def compress(data, level=3):
        return orig(data, _zstd_level(level))
    return compress


def _fast_zstd_compressor(base: type) -> Callable:
    # a factory, not a subclass: subclassing zstandard's C type crashes at garbage collection
    def ZstdCompressor(level=3, *args, **kwargs):  # noqa: N802 - stands in for the class of that name
        return base(_zstd_level(level), *args, **kwargs)
    return ZstdCompressor


_PATCHES: tuple[tuple[str, str, Callable[[Any], Callable]], ...] = (
    ("lzma", "compress", _fast_lzma),
    ("zlib", "compress", _fast_zlib),
    ("brotli", "compress", _fast_brotli),
    ("zstandard", "compress", _fast_zstd_compress),
    ("zstandard", "ZstdCompressor", _fast_zstd_compressor),
)


@contextmanager
def fast_compressors() -> Iterator[list[str]]:
    """Lower the compression levels (see the module docstring) inside the block; yields what was patched
    (`lzma.compress`, ...: brotli and zstandard only where installed) and restores the originals on exit."""
    saved: list[tuple[Any, str, Any]] = []
    try:
        for module_name, attr, make in _PATCHES:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            orig = getattr(module, attr, None)
            if orig is None:
                continue
            saved.append((module, attr, orig))
            setattr(module, attr, make(orig))
        yield [f"{m.__name__}.{a}" for m, a, _ in saved]
    finally:
        for module, attr, orig in reversed(saved):
            setattr(module, attr, orig)


__all__ = ["BROTLI_QUALITY", "LZMA_PRESET", "ZLIB_LEVEL", "ZSTD_LEVEL", "fast_compressors"]
