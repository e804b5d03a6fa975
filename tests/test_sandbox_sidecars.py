"""CaseOps byte sidecars in the sandbox: the `fineweb_val_bytes_*` a run sees are decoys of the real ones.

Needs root and util-linux `unshare`; skips otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.data.build import build_dataset
from harness.data.caseops import OPERATORS
from harness.data.shards import read_header, read_shard
from harness.data.tokenize import load_tokenizer
from harness.sandbox.prepare import RunOptions
from harness.sandbox.session import run_submission
from harness.sandbox.supervisor import sandbox_available
from tests.conftest import TOKENIZERS

REASON = sandbox_available() if sys.platform == "linux" else "Linux only"
CASEOPS = TOKENIZERS / "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"
VARIANT = "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"sandbox unavailable: {REASON}"),
    pytest.mark.skipif(not CASEOPS.is_file(), reason="shared CaseOps tokenizer missing"),
]


def _piece_bytes(tokens: np.ndarray, sp) -> list[int]:
    """Independent of the harness: each token's bytes from its piece, one token at a time."""
    out, prev_special = [], True
    for t in tokens.tolist():
        special = sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t)
        if special:
            n = 0
        elif sp.is_byte(t):
            n = 1
        else:
            piece = sp.id_to_piece(t)
            space = piece.startswith("\u2581")
            text = "".join(ch for ch in piece[1 if space else 0:] if not "\ue000" <= ch <= "\uf8ff")
            n = len(text.encode("utf-8")) + (1 if space and not prev_special else 0)
        out.append(n)
        prev_special = special
    return out


@pytest.fixture(scope="module")
def caseops_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("caseops")
    manifest = build_dataset(out, CASEOPS, train_tokens=20_000, val_tokens=12_000, shard_tokens=20_000,
                             caseops=True)
    assert manifest["caseops"] and (out / "datasets" / VARIANT / "fineweb_val_bytes_000000.bin").is_file()
    return out


def test_caseops_sidecar_inside_is_a_decoy(tmp_path, caseops_data):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(textwrap.dedent("""
        import glob, hashlib, json, os
        import numpy as np
        out = {}
        for path in sorted(glob.glob(os.path.join(os.environ["DATA_PATH"], "fineweb_val_*.bin"))):
            head = np.fromfile(path, dtype="<i4", count=256)
            body = np.fromfile(path, dtype="<u2", offset=1024)
            out[os.path.basename(path)] = {"header": head.tolist(), "n": int(body.size),
                                           "sha": hashlib.sha256(body.tobytes()).hexdigest()}
        print("FACTS " + json.dumps(out))
    """))
    report = run_submission(sub, RunOptions(data=caseops_data, tokenizer=CASEOPS, workdir=tmp_path / "work",
                                            grace=2.0, train_budget=60, eval_budget=10))
    assert report.error is None, report.error
    log = Path(report.measured["run"]["log"]).read_text()
    facts = json.loads(next(line for line in log.splitlines() if line.startswith("FACTS "))[6:])
    assert sorted(facts) == ["fineweb_val_000000.bin", "fineweb_val_bytes_000000.bin"]

    folder = caseops_data / "datasets" / VARIANT
    real_side = folder / "fineweb_val_bytes_000000.bin"
    seen = facts["fineweb_val_bytes_000000.bin"]
    header = read_header(real_side)
    assert seen["header"] == list(header.words)                    # same header, same count
    assert seen["n"] == header.count == facts["fineweb_val_000000.bin"]["n"]
    assert seen["sha"] != hashlib.sha256(read_shard(real_side).tobytes()).hexdigest()    # not the real bytes

    decoy_val = tmp_path / "work" / "data" / "datasets" / VARIANT / "fineweb_val_000000.bin"
    tokens = read_shard(decoy_val)
    assert facts["fineweb_val_000000.bin"]["sha"] == hashlib.sha256(tokens.tobytes()).hexdigest()
    assert not np.array_equal(tokens, read_shard(folder / "fineweb_val_000000.bin"))      # the val is a decoy
    sp = load_tokenizer(CASEOPS)
    assert np.isin(tokens, [sp.piece_to_id(op) for op in OPERATORS]).any()    # decoy text in CaseOps form
    expected = np.asarray(_piece_bytes(tokens, sp), dtype="<u2")
    assert seen["sha"] == hashlib.sha256(expected.tobytes()).hexdigest()                 # bytes of the decoy tokens
    made = report.measured["run"]["data"]["decoy_sidecars"]
    assert made == [{"name": "fineweb_val_bytes_000000.bin", "partner": "fineweb_val_000000.bin",
                     "real_count": header.count, "decoy_count": header.count, "decoy_bytes": int(expected.sum())}]
