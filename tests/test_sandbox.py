"""The sandbox, proved by small scripts of our own: each test asserts on what happened inside or to the host.

Needs root and util-linux `unshare` (namespaces, then a drop to an unprivileged uid); skips otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from harness.data.build import build_dataset
from harness.data.shards import read_header, read_shard
from harness.sandbox.prepare import RunOptions
from harness.sandbox.session import run_submission
from harness.sandbox.supervisor import sandbox_available
from tests.conftest import TOKENIZERS

REASON = sandbox_available() if sys.platform == "linux" else "Linux only"
TOKENIZER = TOKENIZERS / "fineweb_1024_bpe.model"
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"sandbox unavailable: {REASON}"),
    pytest.mark.skipif(not TOKENIZER.is_file(), reason="shared tokenizer missing"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    build_dataset(out, TOKENIZER, train_tokens=40_000, val_tokens=20_000, shard_tokens=20_000)
    return out


def _run(tmp_path: Path, data: Path, code: str, **kw):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train_gpt.py").write_text(textwrap.dedent(code))
    for name, text in kw.pop("files", {}).items():
        (sub / name).write_text(text)
    opts = RunOptions(data=data, tokenizer=TOKENIZER, workdir=tmp_path / "work", grace=kw.pop("grace", 2.0), **kw)
    report = run_submission(sub, opts)
    assert report.error is None, report.error
    log = Path(report.measured["run"]["log"]).read_text()
    return report, log


def _facts(log: str) -> dict:
    """The JSON a test script printed on a line starting with FACTS."""
    line = next(line for line in log.splitlines() if line.startswith("FACTS "))
    return json.loads(line[len("FACTS "):])


def _rules(report) -> set[str]:
    return {f.rule for f in report.findings}


def test_network_connect_and_dns_fail(tmp_path, data):
    report, log = _run(tmp_path, data, """
        import json, socket
        facts = {}
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=3); facts["connect"] = "ok"
        except OSError as exc:
            facts["connect"] = type(exc).__name__
        try:
            socket.getaddrinfo("pypi.org", 443); facts["dns"] = "ok"
        except OSError as exc:
            facts["dns"] = type(exc).__name__
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); facts["loopback"] = "ok"
        print("FACTS " + json.dumps(facts))
    """)
    facts = _facts(log)
    assert facts["connect"] != "ok"
    assert facts["dns"] != "ok"
    assert facts["loopback"] == "ok"          # torchrun's rendezvous needs it
    assert report.measured["run"]["exit_code"] == 0


def test_host_files_and_real_val_invisible_and_writes_fail(tmp_path, data):
    secret = tmp_path / "host_secret.txt"
    secret.write_text("do not read me")
    real_val = next(data.glob("datasets/*/fineweb_val_000000.bin")).resolve()
    report, log = _run(tmp_path, data, f"""
        import json, os
        import pwd
        facts = {{"uid": os.getuid(), "groups": os.getgroups(), "user": pwd.getpwuid(os.getuid()).pw_name}}
        for key, path in (("val", {str(real_val)!r}), ("secret", {str(secret)!r}),
                          ("repo", {str(Path.cwd() / "pyproject.toml")!r}), ("root_home", "/root/.bashrc")):
            try:
                open(path, "rb").read(1); facts[key] = "read"
            except OSError as exc:
                facts[key] = type(exc).__name__
        for key, path in (("w_usr", "/usr/golfaudit_probe"), ("w_data", "/data/probe"), ("w_etc", "/etc/probe"),
                          ("w_host", {str(tmp_path / "escaped.txt")!r}), ("w_root", "/probe")):
            try:
                open(path, "w").write("x"); facts[key] = "written"
            except OSError as exc:
                facts[key] = type(exc).__name__
        open("/tmp/private.txt", "w").write("ok"); open("mine.txt", "w").write("ok")
        facts["tmp_and_cwd"] = "written"
        print("FACTS " + json.dumps(facts))
    """)
    facts = _facts(log)
    assert facts["uid"] != 0 and facts["groups"] == [] and facts["user"] == "golfaudit"
    assert facts["val"] == "FileNotFoundError"          # not merely read-only: absent
    assert facts["secret"] == "FileNotFoundError"
    assert facts["repo"] == "FileNotFoundError"
    assert facts["root_home"] in ("FileNotFoundError", "PermissionError")
    for key in ("w_usr", "w_data", "w_etc", "w_host", "w_root"):
        assert facts[key] != "written", key
    assert facts["tmp_and_cwd"] == "written"
    assert not (tmp_path / "escaped.txt").exists()
    assert (tmp_path / "work" / "run" / "mine.txt").read_text() == "ok"


def test_val_shards_inside_are_decoys(tmp_path, data):
    report, log = _run(tmp_path, data, """
        import glob, hashlib, json, os
        import numpy as np
        folder = os.environ["DATA_PATH"]
        out = {}
        for path in sorted(glob.glob(os.path.join(folder, "fineweb_*.bin"))):
            head = np.fromfile(path, dtype="<i4", count=256)
            body = np.fromfile(path, dtype="<u2", offset=1024)
            out[os.path.basename(path)] = {"header": head[:3].tolist(), "n": int(body.size),
                                           "first": body[:64].tolist()}
        try:
            open(os.path.join(folder, "fineweb_train_000000.bin"), "r+b").write(b"x"); out["train_write"] = "ok"
        except OSError as exc:
            out["train_write"] = type(exc).__name__
        print("FACTS " + json.dumps(out))
    """)
    facts = _facts(log)
    real_dir = next(data.glob("datasets/*"))
    real_val = real_dir / "fineweb_val_000000.bin"
    seen = facts["fineweb_val_000000.bin"]
    header = read_header(real_val)
    assert seen["header"] == [header.magic, header.version, header.count]
    assert seen["n"] == header.count
    real_tokens = read_shard(real_val)
    assert seen["first"][0] == 1                          # starts at a document
    assert seen["first"] != real_tokens[:64].tolist()     # different content
    train = facts["fineweb_train_000000.bin"]
    assert train["first"] == read_shard(real_dir / "fineweb_train_000000.bin")[:64].tolist()   # train is real
    assert facts["train_write"] != "ok"
    decoys = report.measured["run"]["data"]["decoys"]
    assert decoys[0]["same_position_fraction"] < 0.2


def _host_processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_budget_kills_sigterm_ignorer_and_setsid_child(tmp_path, data):
    marker = f"golfaudit-orphan-{os.getpid()}-{time.time_ns()}"
    report, log = _run(tmp_path, data, f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen([sys.executable, "-c",
                          "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
                          {marker!r}], start_new_session=True)
        print("child started", flush=True)
        time.sleep(600)
    """, train_budget=1.0, eval_budget=1.0, grace=1.0)
    run = report.measured["run"]
    assert run["over_budget"] is True and run["killed_for"] == "budget"
    assert _host_processes_with(marker) == []
    assert "child started" in log                      # the log is kept
    assert Path(run["log"]).is_file()
    assert {"TRAIN-TIME-600S", "EVAL-TIME-600S"} & _rules(report)


def test_fork_bomb_is_contained_and_reported(tmp_path, data):
    report, log = _run(tmp_path, data, """
        import os, time
        kids = 0
        for _ in range(400):
            try:
                if os.fork() == 0:
                    time.sleep(30); os._exit(0)
                kids += 1
            except OSError as exc:
                print(f"fork refused after {kids}: {exc}", flush=True)
                break
        os._exit(0)
    """, max_tasks=32, train_budget=20, eval_budget=5)
    run = report.measured["run"]
    assert "fork refused after" in log
    assert run["task_limit_hit"] is True
    assert run["over_budget"] is False                 # the sleeping children died with the payload
    assert any(f.rule == "REPRODUCIBILITY" and "process" in f.message for f in report.findings)


@pytest.mark.parametrize("rlimit_as", [True, False], ids=["rlimit-as", "cgroup-or-watchdog"])
def test_memory_hog_is_contained_and_reported(tmp_path, data, rlimit_as):
    report, log = _run(tmp_path, data, """
        chunks = []
        for i in range(64):
            chunks.append(bytearray(b"x" * (32 << 20)))
            print("allocated MiB", (i + 1) * 32, flush=True)
    """, max_memory=256 << 20, train_budget=30, eval_budget=5, rlimit_as=rlimit_as)
    run = report.measured["run"]
    if rlimit_as:
        assert "MemoryError" in log
    else:                                  # the kernel's OOM killer in the cgroup, or our RSS watchdog
        assert run["memory_limit_hit"] is True
    assert "allocated MiB 2048" not in log
    assert run["exit_code"] != 0
    assert any(f.rule == "REPRODUCIBILITY" for f in report.findings)


def test_oversize_artifact_is_reported(tmp_path, data):
    report, log = _run(tmp_path, data, """
        import os
        open("final_model.int8.ptz", "wb").write(os.urandom(16_000_001))
        print("stopping_early: wallclock_cap train_time:1000ms step:1/1")
    """)
    art = report.measured["artifact"]
    assert art["bytes"]["value"] == 16_000_001
    assert report.measured["total_bytes_max"]["value"] > 16_000_000
    size = [f for f in report.findings if f.rule == "SIZE-CAP-16MB"]
    assert size and size[0].severity == "error"
    assert report.eligible is False


def test_oversize_artifact_that_decompresses_makes_the_run_illegal(tmp_path, data):
    # a well-formed 16.05 MB zlib artifact: only the size cap is wrong with it, and the cap is a legality rule
    report, log = _run(tmp_path, data, """
        import os, zlib
        open("final_model.int8.ptz", "wb").write(zlib.compress(os.urandom(16_050_000), 0))
        print("stopping_early: wallclock_cap train_time:1000ms step:1/1")
        print("final_int8_zlib_roundtrip_exact val_loss:3.00000000 val_bpb:1.50000000", flush=True)
    """, env={"MAX_WALLCLOCK_SECONDS": "600"})
    assert report.measured["artifact"]["decompresses"] is True
    (size,) = [f for f in report.findings if f.rule == "SIZE-CAP-16MB"]
    assert size.category == "legality" and size.severity == "error" and "model 16,05" in size.message
    assert report.verdict == "illegal"


def test_good_artifact_is_measured_with_phase_times(tmp_path, data):
    report, log = _run(tmp_path, data, """
        import io, os, time, zipfile, zlib
        print("step:1/2 train_loss:5.0 train_time:100ms step_avg:100.00ms", flush=True)
        time.sleep(0.3)
        print("stopping_early: wallclock_cap train_time:400ms step:2/2", flush=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("model/data.pkl", os.urandom(50_000))
        open("final_model.int8.ptz", "wb").write(zlib.compress(buf.getvalue(), 9))
        time.sleep(0.5)
        print("final_int8_zlib_roundtrip_exact val_loss:3.00000000 val_bpb:1.50000000", flush=True)
    """, env={"MAX_WALLCLOCK_SECONDS": "60"})
    run = report.measured["run"]
    assert run["exit_code"] == 0 and run["over_budget"] is False
    assert report.measured["artifact"]["decompresses"] is True
    assert report.measured["artifact"]["torch_zip"] is True
    assert run["eval_wall_s"]["value"] >= 0.4
    assert run["eval_wall_s"]["source"] == "reproduced"
    assert run["settings"]["MAX_WALLCLOCK_SECONDS"] == "60"
    assert run["decoy_val_bpb"]["value"] == 1.5
    assert report.verdict == "legal"
    total = report.measured["total_bytes_max"]["value"]
    assert total == report.measured["code_bytes"]["value"] + report.measured["artifact"]["bytes"]["value"]
    assert np.isfinite(total)


def test_wallclock_cap_and_gptq_reserve_are_checked(tmp_path, data):
    report, log = _run(tmp_path, data, """
        import os
        MAX = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 1200))
        print("gptq:reserving 2.0s, effective=598000ms")
        print("GPTQ:collected 66 Hessians in 5.5s")
    """, files={"train_seed1.log": "Hyperparameters:\nmax_wallclock_seconds: 900.0\n",
                "README.md": "```\nMAX_WALLCLOCK_SECONDS=0 torchrun --nproc_per_node=8 train_gpt.py\n```\n"})
    messages = [(f.rule, f.severity, f.message) for f in report.findings]
    assert ("TRAIN-TIME-600S", "error", "the script's default MAX_WALLCLOCK_SECONDS is 1200 (no cap at 600 s)") \
        in messages
    assert any(rule == "TRAIN-TIME-600S" and "shipped log ran with max_wallclock_seconds 900" in m
               for rule, _, m in messages)
    assert any(rule == "TRAIN-TIME-600S" and "MAX_WALLCLOCK_SECONDS=0" in m for rule, _, m in messages)
    assert any(rule == "GPTQ-IN-TRAIN-BUDGET" and "5.5s" in m for rule, _, m in messages)


def test_wallclock_cap_is_read_through_packing(tmp_path, data):
    """A packed record (lzma + b85 self-extracting wrapper) shows its MAX_WALLCLOCK_SECONDS default only in
    the unpacked source: the run report must read it there, not warn that the script never reads it."""
    import base64
    import lzma

    inner = 'import os\nMAX = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 1200))\nprint("ran")\n'
    blob = base64.b85encode(lzma.compress(inner.encode())).decode()
    packed = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{blob}")))\n'
    report, log = _run(tmp_path, data, packed)
    assert "ran" in log
    messages = [(f.rule, f.severity, f.message) for f in report.findings if f.rule == "TRAIN-TIME-600S"]
    assert ("TRAIN-TIME-600S", "error", "the script's default MAX_WALLCLOCK_SECONDS is 1200 (no cap at 600 s)") \
        in messages
    assert not any("does not visibly read" in m for _, _, m in messages)
