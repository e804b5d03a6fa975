"""SIZE-CODE-BYTES: the code a submission runs lives in train_gpt.py (helpers it runs are counted code)."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from rules._native_samples import NATIVE_CACHE_FOLDER, NATIVE_GEMM_FOLDER
from rules._samples import new_log
from rules.base import Citation, Rule, folder

_HELPER = '''def tilt(logits, table):
    return logits + table
'''
_IMPORTS_HELPER = '''import torch

from ngram_tilt import tilt


def eval_val(model, val_tokens, table):
    with torch.no_grad():
        return tilt(model(val_tokens), table)
'''
_ONE_FILE = '''import torch


def tilt(logits, table):
    return logits + table


def eval_val(model, val_tokens, table):
    with torch.no_grad():
        return tilt(model(val_tokens), table)
'''
_PREP = '''import sentencepiece as spm


def main():
    spm.SentencePieceProcessor(model_file="tok.model")
'''


class CodeInScript(Rule):
    ID = "SIZE-CODE-BYTES"
    TITLE = "All counted code lives in train_gpt.py"
    CATEGORY = "eligibility"
    SEVERITY = "warning"
    CONFIDENCE = "high"
    CITATION = Citation("README, Submission process",
                        "The submission artifact is computed as code bytes plus compressed model bytes. All counted "
                        "code should live in the train_gpt.py script.", "README")
    RATIONALE = ("Code the script runs from its own folder is part of the submission: Python modules it imports "
                 "(`import ngram_tilt`, importlib, a sys.path entry inside the folder) or execs, and C/C++/CUDA "
                 "sources it compiles or loads (`torch.utils.cpp_extension.load`, `load_inline`, ctypes, a "
                 "`subprocess` run of nvcc/g++). Their bytes count toward the 16 MB artifact (SIZE-CAP-16MB adds "
                 "them) and the rules read the Python ones with the script; the README asks for all of it to be "
                 "in train_gpt.py. Reported as a warning naming each file and its size, and what the logs count. "
                 "Scripts the training script does not run (data preparation, tokenizer building) are setup, "
                 "not counted code.")
    LEGAL = [
        folder({"train_gpt.py": _ONE_FILE}, "the helper is defined inside train_gpt.py"),
        folder({"train_gpt.py": _ONE_FILE, "prepare_data.py": _PREP},
               "a data-preparation script the training script does not run"),
    ]
    ILLEGAL = [
        folder({"train_gpt.py": _IMPORTS_HELPER, "ngram_tilt.py": _HELPER,
                "train_seed42.log": new_log(code=len(_IMPORTS_HELPER))},
               "train_gpt.py imports a local module: its bytes are counted code outside the script",
               file="ngram_tilt.py", line=1, severity="warning"),
        folder(NATIVE_CACHE_FOLDER, "a C++ source compiled at run time is counted code outside the script",
               file="ngram/fused_expert_kernel.cpp", line=1, severity="warning"),
        folder(NATIVE_GEMM_FOLDER, "a C++ extension built with cpp_extension.load is counted code outside the "
                                   "script", file="csrc/fused_gemm.cpp", line=1, severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        cb = ctx.code_bytes
        if cb is None or not cb.helpers:
            return
        logged = ""
        if cb.logged:
            counts = "/".join(f"{v:,}" for v in cb.logged)
            logged = (f"; the logs count {counts} code bytes, which leaves them out"
                      if max(cb.logged) < cb.binding_bytes else f"; the logs count {counts} code bytes")
        main = cb.files[0]
        for name in cb.helpers:
            yield self.finding(f"{name} ({sub.size(name):,} bytes) is run by {main} but is not in it: its bytes are "
                               f"counted code (all counted: {cb.binding_bytes:,} bytes in {len(cb.files)} "
                               f"files{logged})", name, 1)
