"""Builders of hostile inputs that stay cheap to build: bombs are made by repeating one small compressed
stream (never by compressing gigabytes), huge logs are sparse files (never written out)."""

from __future__ import annotations

import base64
import lzma
import os
import zlib
from pathlib import Path

ZEROS_PER_STREAM = 32 * 1024 * 1024


def xz_bomb(streams: int = 128) -> bytes:
    """Concatenated .xz streams of zeros: `streams` x 32 MiB of output (128 → 4 GiB) from ~640 KB."""
    comp = lzma.LZMACompressor(preset=0)
    block = bytes(1 << 20)
    one = b"".join(comp.compress(block) for _ in range(ZEROS_PER_STREAM // len(block))) + comp.flush()
    return one * streams


def bomb_script(streams: int = 128) -> str:
    """A train_gpt.py whose packed payload is a decompression bomb (b85 over concatenated xz streams)."""
    payload = base64.b85encode(xz_bomb(streams)).decode("ascii")
    return f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{payload}")))\n'


def nested_packed_script(depth: int, inner: str = "print('innermost')\n") -> str:
    """`exec(zlib.decompress(base64.b64decode(...)))` wrapped `depth` times around `inner`."""
    source = inner
    for _ in range(depth):
        blob = base64.b64encode(zlib.compress(source.encode("utf-8"), 9)).decode("ascii")
        source = f'import zlib,base64\nexec(zlib.decompress(base64.b64decode("{blob}")))\n'
    return source


def sparse_log(path: Path, size: int, tail: str) -> bool:
    """A file of `size` bytes that is all holes except `tail` written at its end.

    Returns False when the file system does not keep the holes (the caller should skip, not fill a disk).
    """
    with open(path, "wb") as handle:
        handle.truncate(size - len(tail.encode()))
        handle.seek(0, os.SEEK_END)
        handle.write(tail.encode())
    st = path.stat()
    return st.st_size == size and st.st_blocks * 512 < 16 * 1024 * 1024


def deep_expression(kind: str, depth: int) -> str:
    """One line of Python nested `depth` deep."""
    shapes = {
        "parens": "x = " + "(" * depth + "1" + ")" * depth,
        "brackets": "x = " + "[" * depth + "]" * depth,
        "braces": "x = " + "{1: " * depth + "1" + "}" * depth,
        "calls": "x = " + "f(" * depth + "1" + ")" * depth,
        "unary": "x = " + "-" * depth + "1",
        "binop": "x = " + " + ".join(["1"] * depth),
        "attrs": "x = a" + ".b" * depth,
    }
    return shapes[kind] + "\n"


def deep_blocks(depth: int) -> str:
    """`if True:` blocks nested `depth` deep (the tokenizer stops at 100 indentation levels)."""
    lines = [" " * i + "if True:" for i in range(depth)]
    lines.append(" " * depth + "pass")
    return "\n".join(lines) + "\n"
