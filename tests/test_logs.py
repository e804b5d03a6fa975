"""The log parser on tiny synthetic logs: every final-score label, appended runs, the failed TTT line."""

from __future__ import annotations

import pytest

from harness.logs import parse_log_file, parse_log_text

DUMP = """import os
def main():
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
    log0(f"stopping_early: wallclock_cap train_time:{training_time_ms:.0f}ms step:{step}/{args.iterations}")
    log0(f"Total submission size int8+zlib: {quant_file_bytes + code_bytes} bytes")
    log(f"val_tokens: {val_tokens.numel() - 1}")
    log("Hyperparameters:")
"""

# (label, score lines, expected bpb, expected val_loss): one per label of EVAL_INTERNALS §4
LABELS = [
    ("final_int8_zlib_roundtrip_exact",
     ["final_int8_zlib_roundtrip val_loss:2.0727 val_bpb:1.2244 eval_time:1401ms",
      "final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570"], 1.2243657, 2.07269931),
    ("final_sliding_window_exact",
     ["final_int8_zlib_roundtrip_exact val_loss:2.02579640 val_bpb:1.19979073",
      "final_sliding_window val_loss:1.9698 val_bpb:1.1666 stride:64 seq_len:1024 eval_time:72611ms",
      "final_sliding_window_exact val_loss:1.96976839 val_bpb:1.16660881"], 1.16660881, 1.96976839),
    ("final_sliding_window_eval_exact",
     ["final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.19",
      "final_sliding_window_eval_exact stride:64 val_loss:1.96366 val_bpb:1.16301431"], 1.16301431, 1.96366),
    ("final_int6_sliding_window_exact",
     ["final_int6_roundtrip_exact val_loss:1.94 val_bpb:1.15",
      "final_int6_sliding_window val_loss:1.9030 val_bpb:1.1271 stride:64 eval_time:69809ms",
      "final_int6_sliding_window_exact val_loss:1.90302 val_bpb:1.12707468",
      "final_int8_zlib_roundtrip_exact val_loss:1.90302 val_bpb:1.12707468"], 1.12707468, 1.90302),
    ("legal_ttt_exact",
     ["final_int6_sliding_window_exact val_loss:1.9 val_bpb:1.1225",
      "legal_ttt val_loss:1.8898 val_bpb:1.1192 eval_time:410268ms",
      "legal_ttt_exact val_loss:1.88979 val_bpb:1.11922988"], 1.11922988, 1.88979),
    ("final_sliding", ["final_sliding val_loss:1.9523 val_bpb:1.1565 (stride=16, T=0.90) eval_time:429311ms"],
     1.1565, 1.9523),
    ("quantized_sliding_window",
     ["quantized val_loss:2.83 val_bpb:1.0956 eval_time:8714ms",
      "quantized_sliding_window val_loss:2.79740 val_bpb:1.08300961 eval_time:82837ms"], 1.08300961, 2.7974),
    ("quantized_ttt",
     ["quantized_sliding_window val_loss:2.80 val_bpb:1.0842 eval_time:120961ms",
      "quantized_ttt val_loss:2.79167 val_bpb:1.08079352 eval_time:366525ms"], 1.08079352, 2.79167),
    ("quantized_ttt_lora",
     ["quantized val_loss:2.80 val_bpb:1.0855 eval_time:24381ms",
      "quantized_ttt_lora val_loss:2.77066 val_bpb:1.07258208 eval_time:338200ms"], 1.07258208, 2.77066),
    ("final_int8_ttt_lora",
     ["final_int8_zlib_roundtrip_exact val_loss:2.07240908 val_bpb:1.22739739",
      "final_int8_ttt_lora val_loss:2.0142 val_bpb:1.1929 eval_time:60184ms"], 1.1929, 2.0142),
    ("quantized_ttt_phased",
     ["diagnostic pre-quantization post-ema val_loss:2.30 val_bpb:1.0501 eval_time:9000ms",
      "quantized val_loss:2.35 val_bpb:1.0730 eval_time:9000ms",
      "quantized_ttt_phased val_loss:2.32155897 val_bpb:1.06083288 eval_time:525512ms",
      "total_eval_time:525.5s"], 1.06083288, 2.32155897),
]


@pytest.mark.parametrize("label,lines,bpb,loss", LABELS, ids=[case[0] for case in LABELS])
def test_each_final_label(label, lines, bpb, loss):
    text = DUMP + "stopping_early: wallclock_cap train_time:600038ms step:13780/20000\n" + "\n".join(lines) + "\n"
    log = parse_log_text(text, "train_seed1337.log")
    assert log.final is not None
    assert log.final.label == label
    assert log.final.value == pytest.approx(bpb)
    assert log.final_loss == pytest.approx(loss)
    assert log.final.line == text.split("\n").index(next(ln for ln in lines if ln.startswith(label))) + 1


def test_source_dump_never_matches():
    log = parse_log_text(DUMP, "train.log")
    assert log.final is None and log.total_bytes is None and log.train_time_ms is None and log.val_tokens is None
    assert log.hyperparams == {}


def test_appended_runs_last_wins():
    run = ("stopping_early: wallclock_cap train_time:{ms}ms step:100/20000\n"
           "Total submission size int8+zlib: {size} bytes\n"
           "final_sliding_window_eval_exact val_loss:2.0 val_bpb:{bpb}\n")
    text = DUMP + run.format(ms=600001, size=15000001, bpb="1.20000000") + DUMP \
        + run.format(ms=600002, size=15000002, bpb="1.19000000") + run.format(ms=600003, size=15000003,
                                                                             bpb="1.16301431")
    log = parse_log_text(text, "train.log")
    assert log.runs == 3
    assert log.final.value == pytest.approx(1.16301431)
    assert log.total_bytes.value == 15000003
    assert log.train_time_ms.value == 600003


def test_failed_int6_ttt_line_is_ignored():
    text = DUMP + "\n".join([
        "stopping_early: wallclock_cap train_time: 590026ms step: 5535/20000",
        "final_int6_sliding_window val_loss:2.50671564 val_bpb:1.08938974 eval_time:76195ms",
        "final_int6_ttt val_loss:3.07421378 val_bpb:1.33603200 eval_time:405410ms"]) + "\n"
    log = parse_log_text(text, "train_seed42.log")
    assert log.final.value == pytest.approx(1.08938974)
    assert [h.label for h in log.eval_phases] == ["final_int6_sliding_window"]
    assert log.stop_step == 5535


def test_timestamp_prefix_and_new_formats():
    text = "\n".join([
        "Hyperparameters:", "  datasets_dir: ./data/datasets/fineweb10B_sp8192", "  seed: 0",
        "  tokenizer_path: ./data/tokenizers/fineweb_8192_bpe.model", "  vocab_size: 8192", DUMP,
        "1776143356.801 train_shards: 128", "1776143356.802 val_tokens: 40540160",
        "1776143356.803 gptq:reserving 14000ms from training budget, effective=586000ms",
        "1776143356.804 stopping_early: wallclock_cap train_time: 587091ms step: 4867/20000",
        "1776143356.805 Code size (uncompressed): 139831 bytes", "1776143356.806 Code size (compressed): 28599 bytes",
        "1776143356.807 GPTQ:collected 67 Hessians in 12.6s",
        "1776143356.808 Total submission size quantized+brotli: 15996697 bytes",
        "1776143356.809 quantized_ttt_phased val_loss:2.77 val_bpb:1.07216564 eval_time:500104ms",
        "1776143356.810 total_eval_time:500.1s"]) + "\n"
    log = parse_log_text(text, "logs/train0.txt")
    assert log.seed == 0 and log.seed_in_log == 0
    assert log.variant == "sp8192"
    assert log.train_shards.value == 128 and log.val_tokens.value == 40540160
    assert log.gptq_reserve_s.value == pytest.approx(14.0)
    assert log.gptq_hessian_s.value == pytest.approx(12.6)
    assert log.code_bytes.value == 28599 and log.code_bytes_uncompressed.value == 139831
    assert log.total_bytes.value == 15996697
    assert log.total_eval_time_s.value == pytest.approx(500.1)
    assert log.final.value == pytest.approx(1.07216564)


def test_hyperparameter_block_after_source_dump():
    """The real dump must win over `log("Hyperparameters:")` inside the source (04-10 logs)."""
    text = "Hyperparameters:\n  seed: 7\n  vocab_size: 1024\n" + DUMP + "Hyperparameters:\n"
    log = parse_log_text(text, "train.log")
    assert log.hyperparams == {"seed": "7", "vocab_size": "1024"}
    assert log.seed == 7 and log.variant == "sp1024"


def test_seed_names_and_variants():
    old = "val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=/d/tokenizers/fineweb_1024_bpe.model\nseed:1337\n"
    assert parse_log_text(old, "ternary_log_42.txt").seed == 42
    log = parse_log_text(old, "train_seed0.log")
    assert log.seed == 0 and log.seed_in_log == 1337 and log.variant == "sp1024"
    caseops = "Hyperparameters:\n  datasets_dir: ./x/fineweb10B_sp8192_caseops/datasets/datasets/y\n"
    assert parse_log_text(caseops, "a.log").variant == "sp8192-caseops"


def test_binary_junk_and_big_logs(tmp_path):
    path = tmp_path / "train.log"
    path.write_bytes(b"\x00\xff\xfe" * 1000 + b"\nfinal_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.25\n"
                     + b"x" * 50000 + b"\nTotal submission size int8+zlib: 15000000 bytes\n")
    log = parse_log_file(path, "train.log", limit=4000)
    assert log.truncated
    assert log.total_bytes.value == 15000000          # the tail is read
    full = parse_log_file(path, "train.log", limit=10**7)
    assert full.final.value == pytest.approx(1.25) and not full.truncated


def test_unfamiliar_roundtrip_label():
    log = parse_log_text("final_INT7_zlib_roundtrip val_loss:2.0784 val_bpb:1.2353\n", "train.log")
    assert log.final.value == pytest.approx(1.2353)


def test_keyword_scan_finds_exactly_what_finditer_finds():
    import random

    from harness.logs import KEYWORDS, scan

    fragments = ["\n", "\n", " ", "1712345678.123 ", "x", "val_bpb:", "step:", " train_loss: ", "seed:", "artifact:",
                 "final_int8_zlib_roundtrip val_loss:2.1 val_bpb:1.2 eval_time:5ms",
                 "step:3/10 train_loss:2.0 train_time:100ms step_avg:3ms", "step:3/10 val_loss:2 val_bpb:1.1 train_time:9ms",
                 "stopping_early: wallclock_cap train_time:5000ms step:3/10", "3/10 train_loss: 2.0 train_time: 1.5m",
                 "Total submission size int8+zlib: 123 bytes", "Code size (compressed): 55 bytes",
                 "Serialized model: 77 bytes", "artifact:15.2MB x code:123", "val_tokens: 99", "Hyperparameters:",
                 "  seed: 4", "seed:7", "max_wallclock_seconds: 600", "train_shards: 3",
                 "val_loader:shards pattern=/d/fineweb10B_sp1024/v tokens:100", "train_loader:dataset:/d train_shards:2",
                 "gptq:reserving 12s, effective=588000ms", "GPTQ:collected 5 Hessians in 3.2s", "total_eval_time: 3.5s",
                 "artifact_production_wallclock: 9.1s", "val_bpb:enabled tokenizer_kind=sp tokenizer_path=/t.model"]
    rng = random.Random(5)
    for _ in range(400):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 30)))
        for pattern in KEYWORDS:
            assert [m.span() for m in scan(pattern, text)] == [m.span() for m in pattern.finditer(text)], \
                (pattern.pattern, text)


@pytest.mark.parametrize("line,seconds", [
    ("GPTQ:collected 67 Hessians in 12.6s", 12.6),
    ("GPTQ: collected 67 Hessians in 3.4s", 3.4),
    ("GPTQ:collected 67 Hessians + 67 act_stats in 4.7s", 4.7),
    ("gptq:calibrated 66 layers in 6.8s", 6.8),
    ("gptq:loop-aware calibrated 68 layers in 7.1s", 7.1),
    ("Hessians collected in 17.7s", 17.7),
    ("gptq:collected hessians for 33 layers in 197.2s", None),   # self-generated (AR) calibration: no data read
    ("gptq:loaded 64 calibration sequences in 1.2s", None),
])
def test_calibration_time_formats(line, seconds):
    log = parse_log_text(f"stopping_early: wallclock_cap train_time:586090ms step:6709/20000\n{line}\n", "t.log")
    if seconds is None:
        assert log.gptq_hessian_s is None
    else:
        assert log.gptq_hessian_s.value == pytest.approx(seconds) and log.gptq_hessian_s.line == 2
