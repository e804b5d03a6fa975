"""benchmarks/bench_eval.py compares like with like: one token set for both sides, counts printed per row."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_eval", ROOT / "benchmarks" / "bench_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_more_ttt_tokens_than_tokens_is_refused():
    bench = _bench()
    assert bench.check_token_args(131072, 131072) is None
    assert bench.check_token_args(262144, 65536) is None
    why = bench.check_token_args(65536, 262144)
    assert "--ttt-tokens (262,144) is larger than --tokens (65,536)" in why
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_eval.py"), str(ROOT / "submissions"),
                        "--corpus", "README.md", "--tokenizer", "x.model", "--tokens", "65536",
                        "--ttt-tokens", "262144"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and "cannot exceed --tokens" in p.stderr


def test_the_shared_cut_keeps_whole_sequences_of_every_loader():
    bench = _bench()
    assert bench.shared_cut(65536, 2048, 2048) == 65536
    assert bench.shared_cut(10_000, 1024, 2048) == 8192           # both loaders keep all 8192
    assert bench.shared_cut(10_000, 64, 0) == 9984
    assert bench.chunks(65536, 32768) == 2 and bench.chunks(65537, 32768) == 3


def test_a_row_with_other_counts_than_the_records_own_has_no_difference():
    bench = _bench()
    same = bench.row("ours", 5.7, 5.8, 1.0, 100, 2.0, 1e9, 989.0, (65536, 2), (65536, 2))
    assert same["diff"] == 5.7 - 5.8 and same["ratio"] == 2.0 and "unequal" not in same
    other = bench.row("ours", 5.77746125, 5.86051308, 1.0, 100, 2.0, 1e9, 989.0, (65536, 2), (131072, 4))
    assert other["diff"] is None and other["ratio"] is None
    assert other["unequal"] == "scored 65536 targets / 2 chunks, the record's own 131072 / 4"
    unknown = bench.row("ours", 5.7, 5.8, 1.0, 100, 2.0, 1e9, 989.0, (65536, 2), (None, None))
    assert unknown["diff"] is None                                   # an unknown count is not a match


def test_the_table_prints_the_counts_and_flags_unequal_rows(capsys):
    bench = _bench()
    res = {"record": "r", "device": "cpu", "torch": "x", "vocab": 1024, "seq_len": 64, "stride": 32,
           "layout": "a", "attention": "sdpa",
           "rows": [bench.row("TTT: own", 5.86, None, 2.0, 100, None, 1e9, 989.0, (131072, 4)),
                    bench.row("TTT: ours", 5.77, 5.86, 1.0, 100, 2.0, 1e9, 989.0, (65536, 2), (131072, 4))]}
    bench.print_table(res)
    out = capsys.readouterr().out
    assert "targets" in out and "chunks" in out and " 131072      4 " in out and " 65536      2 " in out
    assert "UNEQUAL token sets in 'TTT: ours'" in out
