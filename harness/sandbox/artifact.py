"""The artifact a run wrote: find it, count its bytes, and check it decompresses within caps.

Compressed model files are `*.ptz` (final_model.int8.ptz, final_model.int6.ptz, final_model_submission.ptz,
...); the raw `final_model.pt` is not counted. The compressor is recognised by its magic bytes (zlib, zstd,
xz/lzma), else raw LZMA and brotli are tried. Decompression stops at `max_bytes` output or `max_ratio`
times the input, so a decompression bomb is reported instead of filling memory.
"""

from __future__ import annotations

import lzma
import zlib
from dataclasses import dataclass
from pathlib import Path

MAX_OUTPUT = 1 << 30
MAX_RATIO = 64
CHUNK = 1 << 16


@dataclass(frozen=True)
class Decompressed:
    ok: bool
    codec: str
    out_bytes: int
    detail: str = ""
    torch_zip: bool = False


@dataclass(frozen=True)
class Artifact:
    path: Path
    bytes: int
    check: Decompressed


def find_artifacts(folder: Path) -> list[Path]:
    """Compressed model files under `folder`, largest last-modified first."""
    found = [p for p in folder.rglob("*.ptz") if p.is_file() and not p.is_symlink()]
    return sorted(found, key=lambda p: (-p.stat().st_mtime, p.name))


class _TooBig(Exception):
    pass


def _stream(decomp, data: bytes, cap: int, flush=None) -> bytes:
    out = bytearray()
    for i in range(0, len(data), CHUNK):
        out += decomp(data[i: i + CHUNK], cap - len(out) + 1)
        if len(out) > cap:
            raise _TooBig
    if flush is not None:
        out += flush()
    if len(out) > cap:
        raise _TooBig
    return bytes(out)


def _zlib(data: bytes, cap: int) -> bytes:
    d = zlib.decompressobj()
    out = _stream(lambda chunk, room: d.decompress(d.unconsumed_tail + chunk, room) if room > 0 else b"",
                  data, cap)
    while d.unconsumed_tail:
        out += d.decompress(d.unconsumed_tail, CHUNK)
        if len(out) > cap:
            raise _TooBig
    if not d.eof:
        raise ValueError("truncated zlib stream")
    return out


def _lzma(data: bytes, cap: int, fmt: int, filters=None) -> bytes:
    d = lzma.LZMADecompressor(format=fmt, filters=filters)
    out = bytearray()
    pending = data
    while True:
        out += d.decompress(pending, max_length=CHUNK)
        pending = b""
        if len(out) > cap:
            raise _TooBig
        if d.eof or (d.needs_input and not pending):
            break
    if not d.eof:
        raise ValueError("truncated lzma stream")
    return bytes(out)


def _zstd(data: bytes, cap: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(data)
    out = bytearray()
    while True:
        chunk = reader.read(CHUNK)
        if not chunk:
            break
        out += chunk
        if len(out) > cap:
            raise _TooBig
    return bytes(out)


def _brotli(data: bytes, cap: int) -> bytes:
    import brotli

    d = brotli.Decompressor()
    out = bytearray()
    for i in range(0, len(data), 1024):
        out += d.process(data[i: i + 1024])
        if len(out) > cap:
            raise _TooBig
    if not d.is_finished():
        raise ValueError("truncated brotli stream")
    return bytes(out)


def decompress_check(data: bytes, max_bytes: int = MAX_OUTPUT, max_ratio: int = MAX_RATIO) -> Decompressed:
    """Try the codecs the records use; never produce more than the caps allow."""
    cap = min(max_bytes, max(len(data), 1) * max_ratio)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        order = ["zstd"]
    elif data[:6] == b"\xfd7zXZ\x00":
        order = ["xz"]
    elif data[:1] == b"\x78":
        order = ["zlib", "lzma-raw", "brotli"]
    else:
        order = ["lzma-alone", "lzma-raw", "brotli"]
    codecs = {
        "zstd": lambda: _zstd(data, cap),
        "xz": lambda: _lzma(data, cap, lzma.FORMAT_XZ),
        "zlib": lambda: _zlib(data, cap),
        "lzma-alone": lambda: _lzma(data, cap, lzma.FORMAT_ALONE),
        "lzma-raw": lambda: _lzma(data, cap, lzma.FORMAT_RAW, [{"id": lzma.FILTER_LZMA2}]),
        "brotli": lambda: _brotli(data, cap),
    }
    errors = []
    for name in order:
        try:
            out = codecs[name]()
        except _TooBig:
            return Decompressed(False, name, cap, f"output passed the cap of {cap} bytes "
                                f"(min of {max_bytes} and {max_ratio}x the input)")
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        except (ValueError, lzma.LZMAError, zlib.error, Exception) as exc:  # noqa: BLE001 - codec errors vary
            errors.append(f"{name}: {type(exc).__name__}")
            continue
        if out[:4] == b"BSHF":
            detail = "byte-shuffled payload (BSHF)"
        else:
            detail = ""
        return Decompressed(True, name, len(out), detail, torch_zip=out[:2] == b"PK")
    return Decompressed(False, "unknown", 0, "no codec could decompress it (" + "; ".join(errors) + ")")


def measure_artifact(path: Path, max_bytes: int = MAX_OUTPUT, max_ratio: int = MAX_RATIO) -> Artifact:
    data = path.read_bytes()
    return Artifact(path, len(data), decompress_check(data, max_bytes, max_ratio))
