"""JSON: keys sorted, byte-identical across runs."""

from __future__ import annotations

import json

from harness.formats import register
from harness.report import Report


@register("json")
def render(report: Report, **_: object) -> str:
    return json.dumps(report.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
