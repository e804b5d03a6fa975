"""The code the TTT scanner judges: parsed units, with packed scripts unpacked.

One switch point: `scan_units(sub)` takes helper D's `code_units` (which uses harness.codeload when it is
there). harness.codeload decodes packed wrappers — `exec(<decompress>(<b85/b64 decode>("...")))` — from
their string literal within its caps (nothing is executed) and names the result `"<name> (unpacked)"`, so
findings point into the code that actually runs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class ScanUnit:
    name: str
    text: str
    tree: ast.Module
    packed_from: str | None = None


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
