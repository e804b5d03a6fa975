"""EVAL-NO-TRAIN-DATA: evaluation code may not read the training shards."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.patterns import eval_path
from harness.scan.vocabulary import TRAIN_DATA_WORD
from rules.base import Citation, Rule, code, folder

_NGRAM_FROM_TRAIN = '''import glob
import numpy as np


def eval_val_ngram(model, val_tokens, h):
    counts = {}
    for f in sorted(glob.glob(h.train_files)):
        toks = np.fromfile(f, dtype="<u2", offset=1024)
        for a, b in zip(toks[:-1], toks[1:]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
    return counts
'''
_HELPER_FROM_TRAIN = '''import glob
import numpy as np


def prefill_cache(data_dir):
    files = sorted(glob.glob(data_dir + "/fineweb_train_*.bin"))
    return [np.fromfile(f, dtype="<u2", offset=1024) for f in files]


def eval_val_sliding(model, val_tokens, data_dir):
    cache = prefill_cache(data_dir)
    return len(cache)
'''
_TTT_TRAIN_MIX = '''def eval_val_ttt(model, val_tokens, train_loader, opt):
    for chunk in val_tokens.split(32768):
        x, y = train_loader.next_batch(32768, 2048)
        model(x, y).backward()
        opt.step()
'''
_TRAIN_THEN_EVAL = '''import glob


def train_model(model, h, opt):
    for f in sorted(glob.glob(h.train_files)):
        model(open(f, "rb").read()).backward()
        opt.step()


def eval_val(model, h, val_tokens):
    seq_len = h.train_seq_len
    return sum(model(val_tokens[i:i + seq_len]) for i in range(0, len(val_tokens), seq_len))
'''
_GPTQ_MAIN = '''def collect_hessians(model, train_loader, n):
    for _ in range(n):
        model(train_loader.next_batch())
    return {}


def eval_val(model, val_tokens):
    return model(val_tokens)


def main(model, train_loader, val_tokens):
    hessians = collect_hessians(model, train_loader, 64)
    return hessians, eval_val(model, val_tokens)
'''
_PREFILL_MODULE = '''import glob

import numpy as np


def prefill(data_dir):
    files = sorted(glob.glob(data_dir + "/fineweb_train_*.bin"))
    return [np.fromfile(f, dtype="<u2", offset=1024) for f in files]
'''
_EVAL_IMPORTS_PREFILL = '''from ngram_prefill import prefill


def eval_val_ngram(model, val_tokens, data_dir):
    table = prefill(data_dir)
    return model(val_tokens), len(table)
'''
_PACKED_TABLE = '''import torch


def build_ngram_table(train_tokens):
    return torch.bincount(train_tokens)


def eval_val(model, val_tokens, artifact):
    table = artifact["ngram_table"]
    return model(val_tokens) + table.sum()
'''


class EvalNoTrainData(Rule):
    ID = "EVAL-NO-TRAIN-DATA"
    TITLE = "Evaluation does not read training data"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "medium"
    CITATION = Citation("README, Restrictions on evaluation",
                        "you aren't allowed to access any training data during evaluation, unless you pay for "
                        "those bits in the <16MB limit.", "README")
    RATIONALE = ("Training shards (`fineweb_train_*`, train loaders/streams/files) read inside an evaluation "
                 "function, or in anything an evaluation function calls, bring unpaid training data into "
                 "evaluation (n-gram tables pre-filled from train at eval, train batches mixed into TTT, "
                 "GPTQ calibration run from eval). Tables built from train during training and shipped inside "
                 "the artifact are the allowed route. GPTQ Hessians collected from train data by the training "
                 "phase are GPTQ-IN-TRAIN-BUDGET's business, not this rule's. Evaluation code is recognised by "
                 "function names (eval_val*, *ttt*, *sliding*, score*) and followed through the calls it "
                 "makes; confidence is medium because names can mislead.")
    LEGAL = [
        code(_TRAIN_THEN_EVAL, "train loop reads train shards; eval reads val only (train_seq_len is a length)"),
        code(_GPTQ_MAIN, "Hessians from the train loader called from main, not from evaluation"),
        code(_PACKED_TABLE, "an n-gram table built from train tokens and shipped in the artifact"),
    ]
    ILLEGAL = [
        code(_NGRAM_FROM_TRAIN, "n-gram counts pre-filled from train shards inside the eval function", 7),
        code(_HELPER_FROM_TRAIN, "a helper called from the sliding eval globs fineweb_train_*", 6),
        code(_TTT_TRAIN_MIX, "TTT eval trains on batches from the train loader", 3),
        folder({"train_gpt.py": _EVAL_IMPORTS_PREFILL, "ngram_prefill.py": _PREFILL_MODULE},
               "the eval calls a function of a local module that globs fineweb_train_*: found in the module",
               7, file="ngram_prefill.py"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for name, (unit, fn, how) in sorted(eval_path(ctx).items()):
            segment = unit.segment(fn)
            if not TRAIN_DATA_WORD.search(segment):
                continue
            for node in unit.walk(fn):
                word = None
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) \
                        and TRAIN_DATA_WORD.search(node.attr):
                    word = node.attr
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and TRAIN_DATA_WORD.search(node.id):
                    word = node.id
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and "fineweb_train" in node.value and len(node.value) < 300:
                    word = node.value
                if word is None:
                    continue
                yield self.finding(f"{name}() ({how}) reads training data (`{word}`, line {node.lineno}) during "
                                   f"evaluation; train-derived data must be paid for inside the artifact",
                                   unit.name, node.lineno, evidence=unit.line_text(node.lineno))
                break
