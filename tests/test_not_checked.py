"""A rule with nothing to read is "not checked" (with the reason) in every format, never a pass; `legal`
needs analysed code."""

from __future__ import annotations

import json

from harness.engine import audit_paths
from harness.formats import render
from rules._samples import old_log

GOOD = "def main():\n    print('train')\n"
# a log without the source dump at its top (old_log() starts with one)
BARE_LOG = ("stopping_early: wallclock_cap train_time:600038ms step:13780/20000\n"
            "final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570\n")


def _batch(tmp_path):
    noscript = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_NoScript"
    noscript.mkdir(parents=True)
    (noscript / "train_seed1337.log").write_text(BARE_LOG)
    good = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Good"
    good.mkdir(parents=True)
    (good / "train_gpt.py").write_text(GOOD)
    (good / "train_seed1337.log").write_text(old_log())
    return audit_paths([noscript, good], use_cache=False)


def test_no_script_is_needs_review_and_its_code_rules_are_not_checked(tmp_path):
    report = _batch(tmp_path)
    noscript, good = sorted(report.submissions, key=lambda s: "Good" in s.path)
    assert noscript.verdict == "needs-review" and good.verdict == "legal"
    (why,) = [f for f in noscript.findings if f.rule == "CODE-ANALYSED"]
    assert "no training script" in why.message and why.confidence == "low"
    cov = noscript.coverage["TTT-SCORE-FIRST"]
    assert cov["status"] == "not-checked" and "no training script" in cov["detail"]
    assert noscript.coverage["TRAIN-TIME-600S"]["status"] == "checked"        # the log was read
    assert good.coverage["TTT-SCORE-FIRST"] == {"status": "checked", "detail": "analysed train_gpt.py"}
    data = json.loads(render(report, "json"))
    assert {s["coverage"]["PREQUANT-TTT-ON-VAL"]["status"] for s in data["submissions"]} == {"checked",
                                                                                           "not-checked"}


def test_text_and_markdown_say_not_checked_with_the_reason(tmp_path):
    report = _batch(tmp_path)
    text = render(report, "text", width=400)
    noscript_block = text[text.index("NoScript  (needs-review"):]
    assert "not checked: " in noscript_block and "PREQUANT-TTT-ON-VAL" in noscript_block
    assert "no code was analysed: the folder has no training script" in noscript_block
    sections = render(report, "markdown").split("### ")
    noscript = next(s for s in sections if "NoScript" in s.split("\n")[0])
    good = next(s for s in sections if "_Good" in s.split("\n")[0])
    row = next(line for line in noscript.splitlines() if line.startswith("| `PREQUANT-TTT-ON-VAL`"))
    assert "⬜ not checked" in row and "no training script" in row and "✅" not in row
    good_row = next(line for line in good.splitlines() if line.startswith("| `PREQUANT-TTT-ON-VAL`"))
    assert "✅ pass" in good_row and "checked: analysed train_gpt.py" in good_row


def test_a_log_source_dump_standing_in_for_an_empty_script_is_still_needs_review(tmp_path):
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_EmptyScript"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text("")
    (folder / "train_seed1337.log").write_text(old_log())          # starts with the source of its run
    (sub,) = audit_paths([folder], use_cache=False).submissions
    assert sub.verdict == "needs-review"
    (why,) = [f for f in sub.findings if f.rule == "CODE-ANALYSED"]
    assert "no shipped code was analysed: train_gpt.py is empty" in why.message
    assert "train_seed1337.log (source dump)" in why.message
    cov = sub.coverage["TTT-SCORE-FIRST"]
    assert cov["status"] == "checked" and "in place of the shipped code (train_gpt.py is empty)" in cov["detail"]


def test_a_detector_that_fails_is_not_a_pass(tmp_path, monkeypatch):
    from rules.ngram_cache import NgramCache

    def broken(self, sub):
        raise ValueError("boom")
        yield

    monkeypatch.setattr(NgramCache, "check", broken)
    report = _batch(tmp_path)
    good = next(s for s in report.submissions if "Good" in s.path)
    (f,) = [f for f in good.findings if f.rule == "INTERNAL-ERROR"]
    assert "NGRAM-CACHE detector failed (ValueError: boom)" in f.message and good.verdict == "needs-review"
    assert good.coverage["NGRAM-CACHE"]["status"] == "not-checked"
