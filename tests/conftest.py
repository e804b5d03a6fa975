"""Shared test set-up: the result cache goes to a temporary folder; shared/ and PG_REPO locations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TOKENIZERS = SHARED / "tokenizers"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOLFAUDIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def pg_repo() -> Path | None:
    """A local clone of openai/parameter-golf, given by PG_REPO (tests that need it skip without)."""
    value = os.environ.get("PG_REPO")
    if value and (Path(value) / "records").is_dir():
        return Path(value)
    return None


requires_pg_repo = pytest.mark.skipif(pg_repo() is None, reason="set PG_REPO to a clone of openai/parameter-golf")
