"""The code the TTT scanner judges: parsed units, with packed scripts unpacked.

One switch point: `scan_units(sub)` takes helper D's `code_units` (which uses harness.codeload when it is
there). A unit that is still a packed wrapper — `exec(<decompress>(<b85/b64 decode>("...")))` — is
decoded here from its string literal (nothing is executed) and replaced by `"<name> (unpacked)"`, so
findings point into the code that actually runs.
"""

from __future__ import annotations

import ast
import base64
import bz2
import lzma
import zlib
from dataclasses import dataclass

from harness.astwalk import walk
from harness.parse import ParseFailure, parse_source

MAX_UNPACKED = 32 * 1024 * 1024


@dataclass(frozen=True)
class ScanUnit:
    name: str
    text: str
    tree: ast.Module
    packed_from: str | None = None


def _dotted_names(node: ast.AST) -> set[str]:
    return {n.attr if isinstance(n, ast.Attribute) else n.id
            for n in walk(node) if isinstance(n, (ast.Attribute, ast.Name))}


def packed_payload(tree: ast.Module) -> tuple[ast.Call, str, set[str]] | None:
    """The `exec(...)` call of a packed wrapper, its string literal and the decode/decompress names used."""
    for node in walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exec" and node.args:
            arg = node.args[0]
            strings = [n.value for n in walk(arg) if isinstance(n, ast.Constant)
                       and isinstance(n.value, (str, bytes)) and len(n.value) > 64]
            if strings:
                value = strings[0]
                return node, value if isinstance(value, str) else value.decode("latin-1"), _dotted_names(arg)
    return None


def _decode(payload: str, names: set[str]) -> str | None:
    raw = payload.encode("latin-1", errors="ignore")
    decoders = [base64.b85decode, base64.b64decode, base64.a85decode]
    if "b64decode" in names:
        decoders.insert(0, base64.b64decode)
    if "a85decode" in names:
        decoders.insert(0, base64.a85decode)
    for dec in decoders:
        try:
            blob = dec(raw)
        except (ValueError, TypeError):
            continue
        for unpack in (_lzma_any, zlib.decompress, bz2.decompress, lambda b: b):
            try:
                out = unpack(blob)
            except (lzma.LZMAError, zlib.error, OSError, ValueError, EOFError):
                continue
            if len(out) > MAX_UNPACKED:
                return None
            try:
                return out.decode("utf-8")
            except UnicodeDecodeError:
                continue
    return None


def _lzma_any(blob: bytes) -> bytes:
    try:
        return lzma.decompress(blob)
    except lzma.LZMAError:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
        return dec.decompress(blob, max_length=MAX_UNPACKED + 1)


def unpack_unit(name: str, tree: ast.Module) -> ScanUnit | None:
    """The unpacked unit of a packed wrapper, or None (not packed, or the payload does not decode)."""
    found = packed_payload(tree)
    if found is None or len(tree.body) > 6:
        return None
    _, payload, names = found
    text = _decode(payload, names)
    if text is None:
        return None
    try:
        parsed = parse_source(text, f"{name} (unpacked)")
    except ParseFailure:
        return None
    return ScanUnit(f"{name} (unpacked)", text, parsed.tree, packed_from=name)


def scan_units(sub) -> list[ScanUnit]:
    """Parsed code of a submission for the scanner (cached on the Submission object)."""
    cached = getattr(sub, "_golfaudit_scan_units", None)
    if cached is not None:
        return cached
    from harness.scan.patterns import code_units

    out: list[ScanUnit] = []
    for u in code_units(sub):
        name = str(u.name)
        packed_from = getattr(u, "packed_from", None)
        if packed_from is None and name.endswith("(unpacked)"):
            packed_from = name.replace(" (unpacked)", "")
        # harness.codeload has already unpacked whatever it could within its caps; a wrapper it kept is a
        # bomb or a dynamic exec it reports itself, and is never decoded again here (no caps here).
        out.append(ScanUnit(name, u.text, u.tree, packed_from))
    try:
        sub._golfaudit_scan_units = out
    except AttributeError:
        pass
    return out
