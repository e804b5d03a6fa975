"""Helper files a script runs: counted as code bytes (harness.codebytes), native sources found and their
subject read (harness.nativecode), and a native cache making NGRAM-CACHE needs-review, never a pass."""

from __future__ import annotations

from pathlib import Path

from harness.codebytes import code_bytes
from harness.context import AuditContext
from harness.engine import audit_submission
from harness.nativecode import native_sources
from harness.submission import Submission
from rules._native_samples import GEMM_CPP, NATIVE_CACHE_FOLDER, NATIVE_GEMM_FOLDER, NGRAM_CPP


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_X"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_native_sources_and_their_subjects(tmp_path):
    root = make(tmp_path, {**NATIVE_CACHE_FOLDER, "ngram/unused.cpp": NGRAM_CPP, "csrc/fused_gemm.cpp": GEMM_CPP})
    found = native_sources(AuditContext(Submission(root, root.name)))
    assert [(s.file, s.by, sorted(s.subjects)) for s in found] == [
        ("ngram/fused_expert_kernel.cpp", "ngram_tilt.py:6", ["cache"])]   # unused.cpp is named by no code


def test_includes_and_inline_sources(tmp_path):
    main = ('from torch.utils.cpp_extension import load, load_inline\n'
            '_k = load(name="k", sources=["csrc/k.cu"])\n'
            '_i = load_inline(name="i", cpp_sources="""' + "// softmax of the logits, then the nll\n" * 3
            + '""", functions=["f"])\n')
    root = make(tmp_path, {"train_gpt.py": main, "csrc/k.cu": '#include "k_util.cuh"\nint k;\n',
                           "csrc/k_util.cuh": "int u;\n"})
    found = native_sources(AuditContext(Submission(root, root.name)))
    assert [(s.file, s.line, s.inline, s.language) for s in found] == [
        ("csrc/k.cu", 1, False, "CUDA"), ("csrc/k_util.cuh", 1, False, "CUDA header"),
        ("train_gpt.py", 3, True, "C++")]
    assert found[2].subjects == frozenset({"scorer"})


def test_helpers_count_as_code_bytes(tmp_path):
    root = make(tmp_path, NATIVE_CACHE_FOLDER)
    cb = code_bytes(Submission(root, root.name))
    sizes = {name: len(text.encode()) for name, text in NATIVE_CACHE_FOLDER.items()}
    assert cb.files == ("train_gpt.py", "ngram_tilt.py", "ngram/fused_expert_kernel.cpp")
    assert cb.raw == sum(sizes.values()) and cb.binding_bytes == cb.raw
    assert cb.added == cb.helpers == ("ngram_tilt.py", "ngram/fused_expert_kernel.cpp")
    assert cb.added_bytes == sizes["ngram_tilt.py"] + sizes["ngram/fused_expert_kernel.cpp"]


def test_a_native_cache_is_needs_review_and_a_gemm_kernel_is_not(tmp_path):
    cache = audit_submission(make(tmp_path / "a", NATIVE_CACHE_FOLDER), rule_ids=["NGRAM-CACHE"])
    assert cache.verdict == "needs-review"
    [finding] = [f for f in cache.findings if f.rule == "NGRAM-CACHE"]
    assert (finding.file, finding.confidence) == ("ngram/fused_expert_kernel.cpp", "low")
    gemm = audit_submission(make(tmp_path / "b", NATIVE_GEMM_FOLDER), rule_ids=["NGRAM-CACHE"])
    assert gemm.verdict == "legal"
