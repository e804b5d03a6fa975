"""Property-based tests: hostile input reaches the log parser, submission.json loading and the unpacker,
and nothing but our own typed errors comes out. CI runs few examples; benchmarks/bench_fuzz.py runs 10,000."""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.robustness import fuzzing

CI = settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NO_SHRINK = settings(CI, phases=[Phase.explicit, Phase.generate])  # a known failure: report it, fast
HAS_UNPACK = importlib.util.find_spec("harness.unpack") is not None
HAS_CODELOAD = importlib.util.find_spec("harness.codeload") is not None


@NO_SHRINK
@given(text=fuzzing.LOG_TEXT, name=fuzzing.LOG_NAME)
def test_log_parser_never_raises(text, name):
    fuzzing.check_log_parser(text, name)


@CI
@given(text=fuzzing.st.text(max_size=3000))
def test_log_parser_never_raises_on_plain_text(text):
    fuzzing.check_log_parser(text, "train.log")


@CI
@given(raw=fuzzing.submission_json_bytes())
def test_submission_json_loading_never_raises(raw):
    fuzzing.check_submission_json(raw)


@pytest.mark.skipif(not HAS_UNPACK, reason="harness/unpack.py (helper B) not there yet")
@CI
@given(blob=fuzzing.compressed_blob())
def test_decompress_raises_only_unpack_error(blob):
    fuzzing.check_decompress(*blob)


@pytest.mark.skipif(not HAS_CODELOAD, reason="harness/codeload.py (helper B) not there yet")
@CI
@given(source=fuzzing.packed_script())
def test_load_code_never_raises(source):
    fuzzing.check_load_code(source)
