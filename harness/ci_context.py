"""The pull request a report is about, read from the CI environment (GitHub Actions) or the checkout.

GitHub Actions sets GITHUB_EVENT_PATH (the event's JSON: `pull_request.number`, `pull_request.head.sha`),
GITHUB_SERVER_URL, GITHUB_REPOSITORY and GITHUB_RUN_ID; the Markdown comment uses them to name the PR,
pin its links to the PR head and point at the run's artifacts when it is truncated. Outside CI with
`--changed-since`, the head is the checkout's HEAD.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_EVENT_BYTES = 8 << 20


def _event(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        if os.path.getsize(path) > MAX_EVENT_BYTES:
            return {}
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pull_request_context(environ: Mapping[str, str], head: str | None = None) -> dict[str, str]:
    """{number, head_sha, repo_url, run_url}, each only when known; `head` is a commit found otherwise
    (the checkout's HEAD under --changed-since)."""
    out: dict[str, str] = {}
    pr = _event(environ).get("pull_request")
    if isinstance(pr, dict):
        if isinstance(pr.get("number"), int):
            out["number"] = str(pr["number"])
        sha = (pr.get("head") or {}).get("sha") if isinstance(pr.get("head"), dict) else None
        if isinstance(sha, str) and sha:
            out["head_sha"] = sha
    ref = environ.get("GITHUB_REF", "")
    if "number" not in out and ref.startswith("refs/pull/"):
        number = ref.split("/")[2]
        if number.isdigit():
            out["number"] = number
    if "head_sha" not in out and head:
        out["head_sha"] = head
    server, repo = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    if server and repo:
        out["repo_url"] = f"{server.rstrip('/')}/{repo}"
        if environ.get("GITHUB_RUN_ID"):
            out["run_url"] = f"{out['repo_url']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return out
