"""`audit.py run` on bad input: a clear message naming the file and the problem, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data.shards import write_shard
from harness.sandbox.supervisor import sandbox_available
from tests.conftest import TOKENIZERS

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = TOKENIZERS / "fineweb_1024_bpe.model"
pytestmark = pytest.mark.skipif(not TOKENIZER.is_file(), reason="shared tokenizer missing")


def _audit(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "audit.py"), "run", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-2000:]
    return done


def _error_of(done: subprocess.CompletedProcess) -> str:
    report = json.loads(done.stdout)
    sub = report["submissions"][0]
    assert sub["verdict"] == "error" and done.returncode == 1
    return sub["error"]


@pytest.fixture
def folder(tmp_path) -> Path:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text("print('hello')\n")
    return sub


@pytest.fixture
def data(tmp_path) -> Path:
    d = tmp_path / "data"
    write_shard(d / "fineweb_train_000000.bin", [1, 5, 6, 7] * 100)
    write_shard(d / "fineweb_val_000000.bin", [1, 8, 9] * 100)
    return d


def test_usage_errors_exit_2(tmp_path, folder, data):
    done = _audit(str(tmp_path / "missing"), "--data", str(data), "--tokenizer", str(TOKENIZER))
    assert done.returncode == 2 and "no such file or folder" in done.stderr
    done = _audit(str(folder), "--data", str(data), "--tokenizer", str(TOKENIZER), "--env", "no-equals")
    assert done.returncode == 2 and "--env wants KEY=VALUE" in done.stderr
    done = _audit(str(folder), "--data", str(data), "--tokenizer", str(TOKENIZER), "--gpus", "-1")
    assert done.returncode == 2
    done = _audit(str(folder), "--data", str(data), "--tokenizer", str(TOKENIZER), "--disk-limit", "lots")
    assert done.returncode == 2 and "--disk-limit" in done.stderr
    done = _audit(str(folder), "--data", str(tmp_path / "nowhere"), "--tokenizer", str(TOKENIZER))
    assert done.returncode == 2 and "--data: no such file or folder" in done.stderr and not done.stdout
    done = _audit(str(folder), "--data", str(data), "--tokenizer", str(tmp_path / "none.model"))
    assert done.returncode == 2 and "--tokenizer: no such file or folder" in done.stderr and not done.stdout


@pytest.mark.parametrize("case", ["bad-tokenizer", "no-val", "bad-val", "bad-train",
                                  "no-script", "busy-workdir", "orphan-sidecar"])
def test_bad_inputs_are_named(tmp_path, folder, data, case):
    tokenizer, data_dir, sub, extra = TOKENIZER, data, folder, []
    if case == "bad-tokenizer":
        tokenizer = tmp_path / "bad.model"
        tokenizer.write_bytes(b"\0garbage")
        expect = "bad.model: not a SentencePiece model"
    elif case == "no-val":
        (data / "fineweb_val_000000.bin").unlink()
        expect = "no fineweb_val_*.bin shards"
    elif case == "bad-val":
        (data / "fineweb_val_000000.bin").write_bytes(b"\1" * 3000)
        expect = "fineweb_val_000000.bin: bad header: magic"
    elif case == "bad-train":
        with open(data / "fineweb_train_000000.bin", "ab") as handle:
            handle.write(b"\0")
        expect = "fineweb_train_000000.bin: size"
    elif case == "no-script":
        (folder / "train_gpt.py").unlink()
        (folder / "README.md").write_text("nothing to run\n")
        expect = "no script train_gpt.py to run"
    elif case == "orphan-sidecar":
        write_shard(data / "fineweb_val_bytes_000001.bin", [0, 1, 2])
        expect = "fineweb_val_bytes_000001.bin: byte sidecar without a val shard fineweb_val_000001.bin beside it"
    else:
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "x").write_text("x")
        extra, expect = ["--workdir", str(busy)], "work folder exists and is not empty"
    done = _audit(str(sub), "--data", str(data_dir), "--tokenizer", str(tokenizer), "--format", "json", *extra)
    assert expect in _error_of(done)


@pytest.mark.skipif(sandbox_available() is not None, reason=f"sandbox unavailable: {sandbox_available()}")
def test_disk_filler_is_stopped_and_reported(tmp_path, folder, data):
    (folder / "train_gpt.py").write_text(
        "import os, time\n"
        "block = os.urandom(1 << 20)\n"
        "for i in range(90):\n"                      # never more than 90 MiB
        "    with open(f'fill_{i}.bin', 'wb') as f:\n"
        "        f.write(block); f.flush(); os.fsync(f.fileno())\n"
        "    time.sleep(0.02)\n"
        "print('filler finished')\n")
    work = tmp_path / "work"
    done = _audit(str(folder), "--data", str(data), "--tokenizer", str(TOKENIZER), "--format", "json",
                  "--disk-limit", "32m", "--workdir", str(work), "--train-budget", "60", "--eval-budget", "10")
    sub = json.loads(done.stdout)["submissions"][0]
    run = sub["measured"]["run"]
    assert run["killed_for"] == "disk" and run["disk_limit_hit"] is True
    assert "RLIMIT_FSIZE=33554432 (every file the run writes)" in run["isolation"]["limits"]
    assert run["disk_written_bytes"] > 32 << 20
    assert "filler finished" not in Path(run["log"]).read_text()
    assert len(list((work / "run").glob("fill_*.bin"))) >= 32          # artifacts stay readable
    assert any(f["rule"] == "REPRODUCIBILITY" and "disk" in f["message"] for f in sub["findings"])


@pytest.mark.skipif(sandbox_available() is not None, reason=f"sandbox unavailable: {sandbox_available()}")
def test_infinite_loop_is_killed_at_the_budget(tmp_path, folder, data):
    (folder / "train_gpt.py").write_text("print('spinning', flush=True)\nwhile True:\n    pass\n")
    done = _audit(str(folder), "--data", str(data), "--tokenizer", str(TOKENIZER), "--format", "json",
                  "--workdir", str(tmp_path / "work"), "--train-budget", "1", "--eval-budget", "1", "--grace", "1")
    sub = json.loads(done.stdout)["submissions"][0]
    run = sub["measured"]["run"]
    assert run["killed_for"] == "budget" and run["over_budget"] is True
    assert run["wall_s"]["value"] >= 2
    assert "spinning" in Path(run["log"]).read_text()
    assert {"TRAIN-TIME-600S", "EVAL-TIME-600S"} & {f["rule"] for f in sub["findings"]}
