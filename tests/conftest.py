"""Shared test set-up: the result cache goes to a temporary folder; shared/ and PG_REPO locations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TOKENIZERS = SHARED / "tokenizers"


# Every finding id a report of this test session carries (in-process reports: check, run, eval, trace alike).
# At the end of the session an id that no registered rule defines fails the run (tests/test_catalogue.py).
EMITTED_RULE_IDS: set[str] = set()


def _record_emitted_ids() -> None:
    from harness.report import SubmissionReport

    build = SubmissionReport.__init__
    if getattr(build, "_records_ids", False):
        return

    def recording_init(self, *args, **kwargs):
        build(self, *args, **kwargs)
        EMITTED_RULE_IDS.update(f.rule for f in self.findings)

    recording_init._records_ids = True
    recording_init.emitted = EMITTED_RULE_IDS     # one set, however often this file is imported
    SubmissionReport.__init__ = recording_init


def record_emitted(report: dict) -> None:
    """Add the finding ids of a JSON report a subprocess printed (`audit.py ... --format json`)."""
    from harness.report import SubmissionReport

    emitted = getattr(SubmissionReport.__init__, "emitted", EMITTED_RULE_IDS)
    for sub in report.get("submissions", []):
        emitted.update(f.get("rule") for f in sub.get("findings", []) if isinstance(f, dict))


def pytest_configure(config):
    _record_emitted_ids()


def pytest_sessionfinish(session, exitstatus):
    import rules

    stray = rules.unregistered(EMITTED_RULE_IDS)
    if stray:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"FAILED catalogue: reports carried finding ids no rule registers: {sorted(stray)}", red=True)
        session.exitstatus = 1


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
