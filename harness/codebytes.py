"""Code bytes of a submission: the shipped script(s) as they lie on disk."""

from __future__ import annotations

from typing import Any

from harness.report import Measured
from harness.submission import Submission


def code_bytes_report(sub: Submission) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sub.script_names:
        out[name] = Measured(sub.size(name), "file", "bytes on disk")
    return out
