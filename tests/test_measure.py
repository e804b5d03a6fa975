"""Claims vs measurements, code bytes (raw, exec'd siblings, packed form) and the significance test."""

from __future__ import annotations

import json
import math

import pytest

from harness.codebytes import code_bytes, packed_size
from harness.measure import backing_logs, claims_of, decimals, matches_rounded, measured_of
from harness.stats import significance, welch_less
from harness.submission import Submission
from rules._samples import new_log, old_log, submission_json


def make(tmp_path, files: dict[str, str]) -> Submission:
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_T"
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return Submission(root, "T")


def test_rounding_precision():
    assert decimals(1.1929) == 4 and decimals(1.2243657) == 7 and decimals(2.0) == 1
    assert matches_rounded(1.1929, 1.19288) and not matches_rounded(1.1929, 1.1935)
    assert matches_rounded(1.2243657, 1.22436570)


def test_claims_and_log_sources(tmp_path):
    seeds = {"1337": {"val_bpb": 1.2243657, "artifact_bytes": 15863489}}
    sub = make(tmp_path, {"submission.json": submission_json(1.2243657, seeds), "train_seed1337.log": old_log(),
                          "train_gpt.py": "x = 1\n"})
    claims = claims_of(sub)
    assert claims["val_bpb"] == 1.2243657
    assert claims["seeds"]["1337"]["artifact_bytes"] == 15863489
    measured = measured_of(sub, code_bytes(sub))
    row = measured["seeds"]["1337"]
    # a score read from a log is tagged as such, never as reproduced
    assert row["val_bpb"].source == "log" and row["val_bpb"].value == pytest.approx(1.2243657)
    assert row["model_bytes"].value == 15815847
    assert row["code_bytes_counted"].value == len("x = 1\n")
    assert row["total_bytes_counted"].value == 15815847 + 6
    assert measured["code"]["binding"] == "raw"


def test_backing_logs_pick_the_claimed_run(tmp_path):
    sub = make(tmp_path, {"submission.json": submission_json(1.1929),
                          "train_v1.txt": old_log("final_int8_ttt_lora", 1.1927, 2.01, train_ms=2_400_107),
                          "train_v3.txt": old_log("final_int8_ttt_lora", 1.1929, 2.0142)})
    assert [log.name for log in backing_logs(sub)] == ["train_v3.txt"]


def test_exec_sibling_counts(tmp_path):
    sub = make(tmp_path, {"train_gpt.py": 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n',
                          "train_gpt_decode.py": "print('x')\n" * 100})
    cb = code_bytes(sub)
    assert cb.files == ("train_gpt.py", "train_gpt_decode.py")
    assert cb.raw == sub.size("train_gpt.py") + sub.size("train_gpt_decode.py")


def test_packed_form_is_used_only_when_it_matches_the_log(tmp_path):
    source = "def f(x):\n    '''doc'''\n    return x + 1\n" * 200
    size = packed_size(source, "lzma")
    assert 0 < size < len(source)
    good = make(tmp_path / "a", {"train_gpt.py": source,
                                 "train_seed42.log": new_log(code=size, code_raw=len(source), tokenizer="sp8192")})
    cb = code_bytes(good)
    assert cb.reproduced == "lzma" and cb.binding == "packed" and cb.binding_bytes == size
    bad = make(tmp_path / "b", {"train_gpt.py": source,
                                "train_seed42.log": new_log(code=size // 2, code_raw=len(source), tokenizer="sp8192")})
    cb = code_bytes(bad)
    assert cb.reproduced is None and cb.binding == "raw" and cb.binding_bytes == len(source.encode())


def test_brotli_packer_detected():
    source = "import brotli\ncompressed = brotli.compress(minified, quality=11)\n" * 20
    assert packed_size(source, "brotli") > 0


def test_welch_directions():
    assert welch_less([1.0, 1.01, 0.99], [2.0, 2.01, 1.99]) < 1e-4
    assert welch_less([2.0, 2.01, 1.99], [1.0, 1.01, 0.99]) > 0.999
    assert math.isnan(welch_less([1.0], [2.0, 2.1]))
    sig = significance([1.880, 1.881, 1.879], [1.900, 1.901, 1.899], "nats/token")
    assert sig.improvement == pytest.approx(0.02)
    assert sig.meets_readme and sig.meets_practice
    small = significance([1.897, 1.898, 1.896], [1.900, 1.901, 1.899], "nats/token")
    assert not small.meets_readme and small.meets_practice


def test_measured_is_json_serialisable(tmp_path):
    from harness.report import _measured_json

    sub = make(tmp_path, {"train_seed42.log": new_log(code=20, code_raw=None, tokenizer="sp8192"),
                          "train_gpt.py": "x = 1\n"})
    json.dumps(_measured_json(measured_of(sub, code_bytes(sub))))
