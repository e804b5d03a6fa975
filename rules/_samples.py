"""Small synthetic training logs in the real line formats (EVAL_INTERNALS §4, RULES.md §F), for rule examples.

Written for golfaudit; each starts with a source dump whose `log0(f"final_... val_loss:{...}")` lines must
never be read as scores, as in real logs.
"""

from __future__ import annotations

import json
from typing import Any

SOURCE_DUMP = '''import os
def main():
    log0(f"stopping_early: wallclock_cap train_time:{training_time_ms:.0f}ms step:{step}/{args.iterations}")
    log0(f"Total submission size int8+zlib: {quant_file_bytes + code_bytes} bytes")
    log0(f"final_int8_zlib_roundtrip val_loss:{q_val_loss:.4f} val_bpb:{q_val_bpb:.4f}")
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
    log0(f"val_tokens: {val_tokens.numel() - 1}")
====================================================================================================
'''

TOKENIZERS = {
    "sp1024": ("fineweb10B_sp1024", "fineweb_1024_bpe.model", 1024, 62021632),
    "sp4096": ("fineweb10B_sp4096", "fineweb_4096_bpe.model", 4096, 45508608),
    "sp8192": ("fineweb10B_sp8192", "fineweb_8192_bpe.model", 8192, 40540160),
    "sp8192-caseops": ("fineweb10B_sp8192_lossless_caps_caseops_v1_reserved",
                       "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model", 8192, 47851520),
}


def _score(label: str, loss: float, bpb: float, eval_ms: int | None) -> list[str]:
    """A score line as the records print it: rounded line + `_exact` twin for the old labels."""
    tail = f" eval_time:{eval_ms}ms" if eval_ms is not None else ""
    if label in ("final_int8_zlib_roundtrip", "final_sliding_window", "final_sliding_window_eval",
                 "final_int6_sliding_window", "legal_ttt", "final_int6_roundtrip"):
        return [f"{label} val_loss:{loss:.4f} val_bpb:{bpb:.4f}{tail}",
                f"{label}_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}"]
    if label == "final_sliding":
        return [f"{label} val_loss:{loss:.4f} val_bpb:{bpb:.4f} (stride=16, T=0.90){tail}"]
    return [f"{label} val_loss:{loss:.8f} val_bpb:{bpb:.8f}{tail}"]


def old_log(label: str = "final_int8_zlib_roundtrip", bpb: float = 1.2243657, loss: float = 2.07269931,
            seed: int = 1337, train_ms: int = 600038, step: int = 13780, model: int = 15815847,
            code: int = 47642, val_tokens: int | None = 62021632, shards: int = 80, eval_ms: int = 1401,
            tokenizer: str = "sp1024", extra: tuple[str, ...] = (), data_root: str = "./data") -> str:
    """A log in the 2026-03 format (baseline family: `seed:N`, `val_loader:` and `stopping_early:` lines)."""
    folder, model_file, _, _ = TOKENIZERS[tokenizer]
    lines = [SOURCE_DUMP.rstrip("\n"),
             f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={data_root}/tokenizers/{model_file}",
             f"train_loader:dataset:{folder} train_shards:{shards}"]
    if val_tokens is not None:
        lines.append(f"val_loader:shards pattern={data_root}/datasets/{folder}/fineweb_val_*.bin tokens:{val_tokens}")
    lines += [f"seed:{seed}",
              "step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.02ms",
              f"step:{step}/20000 val_loss:{loss - 0.01:.4f} val_bpb:{bpb - 0.004:.4f} train_time:{train_ms}ms "
              f"step_avg:{train_ms / max(step, 1):.2f}ms",
              f"stopping_early: wallclock_cap train_time:{train_ms}ms step:{step}/20000",
              "Serialized model: 67224983 bytes",
              f"Code size: {code} bytes",
              f"Total submission size: {67224983 + code} bytes",
              f"Serialized model int8+zlib: {model} bytes (payload:17178912 raw_torch:17224025 payload_ratio:3.91x)",
              f"Total submission size int8+zlib: {model + code} bytes",
              *extra]
    if label != "final_int8_zlib_roundtrip":
        lines += _score("final_int8_zlib_roundtrip", loss + 0.05, bpb + 0.03, 1401)
    lines += _score(label, loss, bpb, eval_ms)
    return "\n".join(lines) + "\n"


def new_log(label: str = "quantized_ttt_phased", bpb: float = 1.06083288, loss: float = 2.32155897,
            seed: int = 42, train_ms: int = 592054, step: int = 4921, model: int = 15918316,
            code: int = 31385, code_raw: int | None = 152661, val_tokens: int | None = 47851520,
            shards: int = 80, eval_ms: int = 525512, total_eval_s: float | None = 525.5,
            tokenizer: str = "sp8192-caseops", gptq_reserve: float | None = 8.0, hessian_s: float | None = 3.8,
            timestamps: bool = False, extra: tuple[str, ...] = (), data_root: str = "./data",
            max_wallclock: float = 600.0) -> str:
    """A log in the 2026-04 format (`Hyperparameters:` dump, `train_shards:`, `val_tokens:`, `gptq:` lines)."""
    folder, model_file, vocab, _ = TOKENIZERS[tokenizer]
    caseops = tokenizer.endswith("caseops")
    head = ["Hyperparameters:",
            f"  caseops_enabled: {caseops}",
            f"  datasets_dir: {data_root}/datasets/{folder}",
            f"  gptq_reserve_seconds: {gptq_reserve or 0.0}",
            f"  max_wallclock_seconds: {max_wallclock}",
            f"  seed: {seed}",
            f"  tokenizer_path: {data_root}/tokenizers/{model_file}",
            f"  vocab_size: {vocab}",
            SOURCE_DUMP.rstrip("\n"),
            f"train_shards: {shards}"]
    if val_tokens is not None:
        head.append(f"val_tokens: {val_tokens}")
    body = []
    if gptq_reserve is not None:
        body.append(f"gptq:reserving {gptq_reserve}s, effective={600000 - int(gptq_reserve * 1000)}ms")
    body += ["0/20000 val_loss: 9.0073 val_bpb: 3.4872",
             f"4500/20000 train_loss: 2.2801 train_time: {train_ms / 60000 - 0.4:.1f}m tok/s: 6635473",
             f"stopping_early: wallclock_cap train_time: {train_ms}ms step: {step}/20000",
             "Serialized model: 135417533 bytes"]
    if code_raw is not None:
        body += [f"Code size (uncompressed): {code_raw} bytes", f"Code size (compressed): {code} bytes"]
    else:
        body.append(f"Code size: {code} bytes")
    if hessian_s is not None:
        body += ["GPTQ:collecting Hessians from calibration data...", f"GPTQ:collected 67 Hessians in {hessian_s}s"]
    body += [f"Serialized model quantized+brotli: {model} bytes",
             f"Total submission size quantized+brotli: {model + code} bytes",
             *extra]
    if label != "quantized":
        body += _score("quantized", loss + 0.03, bpb + 0.012, 8714)
    body += _score(label, loss, bpb, eval_ms)
    if total_eval_s is not None:
        body.append(f"total_eval_time:{total_eval_s}s")
    if timestamps:
        body = [f"1776143356.{i:03d} {line}" for i, line in enumerate(body)]
    return "\n".join(head + body) + "\n"


def ternary_log(bpb: float = 1.1565, seed: int = 42, train_ms: int = 599652) -> str:
    """The ternary/binary family: `step:N/N loss:X t:Nms`, `artifact:XMB ... code:N`, `final_sliding`."""
    lines = ["step:1/20000 loss:9.0112 t:412ms avg:412ms",
             f"step:6500/20000 loss:2.6012 t:{train_ms}ms avg:92.25ms",
             f"stopping_early: wallclock_cap train_time:{train_ms}ms step:6500/20000",
             "artifact:15.92MB ternary:14.81MB fp8:1.04MB code:70853",
             *_score("final_sliding", 1.9523, bpb, 429311)]
    return "\n".join(lines) + "\n"


def submission_json(val_bpb: Any = 1.2243657, seeds: dict[str, dict[str, Any]] | None = None,
                    **more: Any) -> str:
    """A submission.json with the README's fields and, optionally, `seed_results`."""
    data: dict[str, Any] = {"name": "Example run", "author": "golfaudit", "github_id": "golfaudit",
                            "date": "2026-04-20", "val_bpb": val_bpb}
    if seeds is not None:
        data["seed_results"] = seeds
    data.update(more)
    return json.dumps(data, indent=2) + "\n"


def line_of(text: str, needle: str, occurrence: int = -1) -> int:
    """1-based line of the `occurrence`-th line starting with `needle` (default: the last)."""
    hits = [i + 1 for i, line in enumerate(text.split("\n")) if line.startswith(needle)]
    return hits[occurrence]
