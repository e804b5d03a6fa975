"""Hypothesis strategies and the properties fuzzed by tests/robustness/test_properties.py (few examples, in
CI) and benchmarks/bench_fuzz.py (10,000 examples each, by hand).

Each property: whatever the input, the code under test returns normally or raises only its own typed
error (LoadError, UnpackError, ...) — never a bare ValueError, IndexError or RecursionError.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import strategies as st

# -- logs -------------------------------------------------------------------------------------------------
NUMBER = st.one_of(
    st.from_regex(r"[0-9]{1,12}(\.[0-9]{0,10})?", fullmatch=True),
    st.from_regex(r"[0-9.]{1,8}", fullmatch=True),               # "1..2", "...", "1.2.3"
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),  # over int()'s digit limit
    st.sampled_from(["", "nan", "inf", "-1", "1e5", "٣", "１２"]),
)
LABEL = st.sampled_from([
    "final_int8_zlib_roundtrip", "final_int8_zlib_roundtrip_exact", "final_sliding_window", "legal_ttt",
    "legal_ttt_exact", "quantized_ttt", "final_int6_ttt", "quantized", "diagnostic post ema", "final_x",
])
TS = st.sampled_from(["", "1712345678.123 ", "1712345678. ", "17123456789.1 "])


@st.composite
def log_line(draw) -> str:
    n = lambda: draw(NUMBER)  # noqa: E731
    shapes = [
        lambda: f"{draw(LABEL)} val_loss:{n()} val_bpb:{n()} eval_time:{n()}ms",
        lambda: f"{draw(LABEL)} stride:{n()} sliding val_loss:{n()} sliding val_bpb:{n()}",
        lambda: f"Total submission size{draw(st.sampled_from(['', ' int8+zlib', ' x']))}: {n()} bytes",
        lambda: f"Serialized model: {n()} bytes",
        lambda: f"Code size{draw(st.sampled_from(['', ' (compressed)', ' (uncompressed)']))}: {n()} bytes",
        lambda: f"artifact:{n()}MB total code:{n()}",
        lambda: f"stopping_early: wallclock_cap train_time:{n()}ms step:{n()}/{n()}",
        lambda: f"step:{n()}/{n()} val_loss:{n()} val_bpb:{n()} train_time:{n()}ms",
        lambda: f"step:{n()}/{n()} train_loss:{n()} train_time:{n()}ms",
        lambda: f"{n()}/{n()} train_loss: {n()} train_time: {n()}m",
        lambda: f"val_tokens: {n()}", lambda: f"val_loader:shards pattern=x tokens:{n()}",
        lambda: f"train_shards: {n()}", lambda: f"total_eval_time: {n()}s",
        lambda: f"gptq:reserving {n()}s, effective={n()}ms", lambda: f"GPTQ:collected {n()} Hessians in {n()}s",
        lambda: f"artifact_production_wallclock: {n()}s", lambda: f"max_wallclock_seconds: {n()}",
        lambda: "Hyperparameters:", lambda: f"  seed: {n()}", lambda: f"  {draw(st.from_regex(r'[a-z_]{1,8}', fullmatch=True))}: {n()}",
        lambda: draw(st.text(max_size=40)),
    ]
    shape = draw(st.sampled_from(shapes))
    return draw(TS) + shape()


LOG_TEXT = st.one_of(
    st.lists(log_line(), max_size=30).map("\n".join),
    st.text(max_size=2000),
    st.binary(max_size=2000).map(lambda b: b.decode("utf-8", errors="replace")),
)
LOG_NAME = st.sampled_from(["train.log", "train_seed42.log", "seed_" + "9" * 5000 + ".log", "x.txt"])


def check_log_parser(text: str, name: str) -> None:
    """parse_log_text never raises; what it returns is a ParsedLog whose hits point inside the text."""
    from harness.logs import ParsedLog, parse_log_text

    parsed = parse_log_text(text, name)
    assert isinstance(parsed, ParsedLog)
    lines = text.count("\n") + 1
    for hit in parsed.finals:
        assert 1 <= hit.line <= lines


# -- submission.json ----------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
KNOWN_KEYS = ["name", "author", "github_id", "val_bpb", "val_loss", "date", "track", "seeds", "seed_results",
              "bytes_total", "bytes_code", "mean_val_bpb"]


@st.composite
def submission_json_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["object", "value", "mutated", "binary", "deep"]))
    if kind == "object":
        keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
        return json.dumps(draw(st.dictionaries(keys, JSON_VALUES, max_size=8))).encode()
    if kind == "value":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "mutated":
        raw = bytearray(json.dumps(draw(st.dictionaries(st.sampled_from(KNOWN_KEYS), JSON_VALUES))).encode())
        for _ in range(draw(st.integers(1, 4))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    if kind == "deep":
        depth = draw(st.integers(60, 5000))
        return (draw(st.sampled_from(["[", '{"a":'])) * depth).encode() + b"1"
    return draw(st.binary(max_size=500))


def check_submission_json(raw: bytes) -> None:
    """Loading any submission.json gives a JsonResult (data xor error naming the file); track/date/claims
    never raise."""
    from harness.measure import claims_of
    from harness.submission import JsonResult, Submission

    with tempfile.TemporaryDirectory(prefix="golfaudit-fuzz-") as tmp:
        root = Path(tmp) / "2026-04-20_Fuzz"
        root.mkdir()
        (root / "submission.json").write_bytes(raw)
        sub = Submission(root, root.name)
        result = sub.submission_json
        assert isinstance(result, JsonResult)
        assert (result.data is None) != (result.error is None)
        if result.error is not None:
            assert result.error.startswith("submission.json"), result.error
        else:
            assert isinstance(result.data, dict)
        assert sub.track in ("10min-16mb", "non-record-16mb", "non-record-unlimited-compute-16mb")
        sub.date  # noqa: B018 - must not raise
        claims_of(sub)


# -- unpacker -------------------------------------------------------------------------------------------------
LAYERS = ["lzma", "lzma-raw", "xz", "zlib", "gzip", "bz2", "brotli", "zstd", "deflate", "nonsense"]


def valid_compressed(layer: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma
    import zlib

    makers = {"zlib": zlib.compress, "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
              "lzma": lzma.compress}
    return makers.get(layer, lambda b: b)(data)


@st.composite
def compressed_blob(draw) -> tuple[str, bytes]:
    layer = draw(st.sampled_from(LAYERS))
    data = draw(st.binary(max_size=300))
    blob = valid_compressed(layer, data) if draw(st.booleans()) else data
    if blob and draw(st.booleans()):  # truncate or corrupt
        cut = draw(st.integers(0, len(blob)))
        blob = blob[:cut] + draw(st.binary(max_size=8))
    return layer, blob


def check_decompress(layer: str, blob: bytes) -> None:
    from harness.unpack import Limits, UnpackError, decompress

    try:
        out = decompress(layer, blob, Limits())
    except UnpackError as exc:
        assert exc.kind in ("bomb", "unreadable", "syntax", "outside-folder", "dynamic"), exc.kind
        return
    assert isinstance(out, bytes)


ENCODERS = ["b85decode", "b64decode", "a85decode", "b32decode", "b16decode", "unhexlify"]
DECOMPRESSORS = ["lzma.decompress", "zlib.decompress", "bz2.decompress", "gzip.decompress"]


@st.composite
def packed_script(draw) -> str:
    """A wrapper `exec(<decompress>(<decode>(<literal>)))` whose literal may or may not be valid."""
    import base64
    import zlib

    decomp = draw(st.sampled_from(DECOMPRESSORS))
    enc = draw(st.sampled_from(ENCODERS))
    if draw(st.booleans()):
        inner = draw(st.sampled_from(["print(1)\n", "def f(:\n", "x = 1\0\n", "import os\n" * 3, ""]))
        literal = base64.b85encode(zlib.compress(inner.encode())).decode()
        decomp, enc = "zlib.decompress", "b85decode"
    else:
        literal = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters='"\\'),
                               max_size=200))
    extra = draw(st.sampled_from(["", ".decode()", ".decode('latin-1')", ".decode('nope')"]))
    mod = "binascii" if enc == "unhexlify" else "base64"
    return (f"import lzma,zlib,bz2,gzip,base64,binascii\n"
            f'exec({decomp}({mod}.{enc}("{literal}")){extra})\n')


def check_load_code(source: str) -> None:
    """load_code turns every obstacle into a CodeProblem; it never raises."""
    from harness.codeload import CodeBundle, load_code
    from harness.submission import Submission

    with tempfile.TemporaryDirectory(prefix="golfaudit-fuzz-") as tmp:
        root = Path(tmp) / "case"
        root.mkdir()
        (root / "train_gpt.py").write_text(source, encoding="utf-8")
        bundle = load_code(Submission(root, "case"))
        assert isinstance(bundle, CodeBundle)
        for problem in bundle.problems:
            assert problem.file.startswith("train_gpt.py"), problem
