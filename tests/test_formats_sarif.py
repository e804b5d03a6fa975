"""SARIF 2.1.0: golden file, validation against the vendored official schema, and its mapping rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from harness.formats import render
from tests.test_formats import FIXED_RULES, check_golden, fixed_rules, sample_report  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "harness/formats/schemas/sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def validate(doc: dict) -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)


def test_sarif_golden(fixed_rules):  # noqa: F811
    check_golden("report.sarif", render(sample_report(), "sarif"))


def test_sarif_validates_against_the_official_schema(fixed_rules):  # noqa: F811
    validate(json.loads(render(sample_report(), "sarif")))


def test_schema_rejects_a_broken_document(fixed_rules):  # noqa: F811
    doc = json.loads(render(sample_report(), "sarif"))
    doc["runs"][0]["results"][0]["level"] = "fatal"          # not a SARIF level
    try:
        validate(doc)
    except jsonschema.ValidationError:
        return
    raise AssertionError("the schema accepted an invalid level; the validation would prove nothing")


def test_sarif_rule_metadata_and_results(fixed_rules):  # noqa: F811
    doc = json.loads(render(sample_report(), "sarif"))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [m.id for m in FIXED_RULES]
    ttt = rules[[r["id"] for r in rules].index("TTT-SCORE-FIRST")]
    assert ttt["shortDescription"]["text"] == "Test-time training only on already-scored tokens"
    assert ttt["fullDescription"]["text"].startswith("Training on validation tokens")
    assert ttt["helpUri"] == "https://github.com/openai/parameter-golf#faq"
    assert "only allowed to test-time train" in ttt["help"]["text"]
    results = run["results"]
    assert len(results) == sum(len(s.findings) for s in sample_report().submissions)
    by_msg = {r["message"]["text"]: r for r in results}
    bad = by_msg["val tokens reach optimizer.step() at line 812 before they are scored at line 830"]
    assert bad["level"] == "error" and rules[bad["ruleIndex"]]["id"] == "TTT-SCORE-FIRST"
    loc = bad["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "records/track_10min_16mb/2026-04-01_BadTTT/train_gpt.py",
                                       "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 812 and loc["region"]["endLine"] == 815
    info = by_msg["eval took 412.3 s of 600 s"]
    assert info["level"] == "note"                                      # info -> note
    suppressed = by_msg["missing: README.md"]
    assert suppressed["suppressions"] == [{"kind": "external", "status": "accepted",
                                           "justification": "README lives in the PR description "
                                                            "(allow.toml entry 1)"}]
    odd = by_msg[next(m for m in by_msg if m.startswith("exec()"))]
    assert odd["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("Odd%7CName/train_gpt.py")
    assert odd["properties"]["confidence"] == "low" and odd["properties"]["verdict"] == "needs-review"
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert "Permission denied" in notes[0]["message"]["text"]


def test_sarif_from_the_cli_on_a_real_folder(tmp_path):
    """The whole path: a folder of ours with a broken script, audited by the CLI, valid SARIF out."""
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-09_Broken"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text("def f(:\n    pass\n", encoding="utf-8")
    (folder / "submission.json").write_text('{"name": "x", "val_bpb": 1.3}\n', encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "audit.py"), "check", "records", "--format", "sarif",
                           "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr
    doc = json.loads(done.stdout)
    validate(doc)
    hits = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "RECORDS-FOLDER" and "parse" in r["message"]["text"]]
    assert hits and hits[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert hits[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "records/track_10min_16mb/2026-04-09_Broken/train_gpt.py"


def test_help_links_come_from_the_citation():
    from harness.formats.rulestatus import catalogue, citation_url

    assert citation_url("https://x/y", "README") == "https://x/y"
    assert citation_url("", "Issue #1017, condition C1") == "https://github.com/openai/parameter-golf/issues/1017"
    assert citation_url("", "README, FAQ") == "https://github.com/openai/parameter-golf/blob/main/README.md"
    assert citation_url("", "a blog post") == ""
    metas = {m.id: m for m in catalogue()}
    assert metas["RECORDS-FOLDER"].url.endswith("README.md")          # the real catalogue gets help links
