"""NGRAM-CACHE: eval-time caches must only hold tokens already scored, and are used in a single pass."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.pathstate import path_gated
from harness.scan.patterns import (
    SCORE_ACC,
    current_token_refs,
    position_loops,
    score_lines,
    table_reads,
    table_updates,
    words_of,
)
from rules._native_samples import NATIVE_CACHE_FOLDER, NATIVE_GEMM_FOLDER
from rules.base import Citation, Rule, code, folder

_CAUSAL = '''import math


def eval_val_ngram(val_tokens, vocab, alpha=0.5):
    counts = {}
    ctx_counts = {}
    nll = 0.0
    for p in range(1, len(val_tokens)):
        prev, tok = val_tokens[p - 1], val_tokens[p]
        c = counts.get((prev, tok), 0)
        n = ctx_counts.get(prev, 0)
        nll -= math.log((c + alpha / vocab) / (n + alpha))
        counts[(prev, tok)] = c + 1
        ctx_counts[prev] = n + 1
    return nll
'''
_UPDATE_FIRST = '''import math


def eval_val_ngram(val_tokens, vocab, alpha=0.5):
    counts = {}
    ctx_counts = {}
    nll = 0.0
    for p in range(1, len(val_tokens)):
        prev = val_tokens[p - 1]
        counts[(prev, val_tokens[p])] = counts.get((prev, val_tokens[p]), 0) + 1
        ctx_counts[prev] = ctx_counts.get(prev, 0) + 1
        c = counts.get((prev, val_tokens[p]), 0)
        nll -= math.log((c + alpha / vocab) / (ctx_counts[prev] + alpha))
    return nll
'''
_PREFILL = '''import math


def eval_val_cache(val_tokens, probs_fn):
    counts = {}
    for p in range(1, len(val_tokens)):
        key = (val_tokens[p - 1], val_tokens[p])
        counts[key] = counts.get(key, 0) + 1
    nll = 0.0
    for p in range(1, len(val_tokens)):
        c = counts.get((val_tokens[p - 1], val_tokens[p]), 0)
        nll -= math.log(probs_fn(p, c))
    return nll
'''
_RESCORE = '''import math


def eval_val_two_pass(val_tokens, probs_fn):
    counts = {}
    first_nll = 0.0
    for p in range(1, len(val_tokens)):
        key = (val_tokens[p - 1], val_tokens[p])
        first_nll -= math.log(probs_fn(p, counts.get(key, 0)))
        counts[key] = counts.get(key, 0) + 1
    final_nll = 0.0
    for p in range(1, len(val_tokens)):
        key = (val_tokens[p - 1], val_tokens[p])
        final_nll -= math.log(probs_fn(p, counts.get(key, 0)))
    return final_nll
'''
_TRAIN_TABLE = '''def build_bigram_table(train_tokens):
    table = {}
    for p in range(1, len(train_tokens)):
        key = (train_tokens[p - 1], train_tokens[p])
        table[key] = table.get(key, 0) + 1
    return table


def eval_val(val_tokens, table, probs_fn):
    nll = 0.0
    for p in range(1, len(val_tokens)):
        nll += probs_fn(table.get(val_tokens[p - 1], 0))
    return nll
'''


class NgramCache(Rule):
    ID = "NGRAM-CACHE"
    TITLE = "Eval-time n-gram caches hold only already-scored tokens, single pass"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "medium"
    NATIVE_SUBJECTS = frozenset({"cache"})
    CITATION = Citation("Issue #1017, condition C3 (score before update)",
                        "Only AFTER that score is fixed may state be updated using x_t.", "#1017")
    RATIONALE = ("An online cache (n-gram counts, hint tables) may predict x_t only from tokens before t: it "
                 "must be updated with x_t after x_t is scored. Flagged, inside a position loop: a table "
                 "updated with the current token before the read that scores it; a table filled over the "
                 "whole validation stream in one loop before a later loop scores with it; and a second "
                 "scoring pass that reads the cache completed by the first (C4: no rescoring). Tables built "
                 "from training data in training are not this rule's concern (EVAL-NO-TRAIN-DATA / size cap). "
                 "The hashed-cache normalisation problem (C2) is not judged here. A cache the submission "
                 "compiles from its own C/C++ sources (ctypes, cpp_extension, g++/nvcc) cannot be read: "
                 "needs-review, naming the source.")
    LEGAL = [
        code(_CAUSAL, "score from prefix counts, then update with the scored token"),
        code(_TRAIN_TABLE, "bigram table from training tokens; eval reads it keyed by the previous token"),
        folder(NATIVE_GEMM_FOLDER, "a compiled C++ GEMM kernel: native code, but no cache to review"),
    ]
    ILLEGAL = [
        code(_UPDATE_FIRST, "counts updated with the current token before it is scored", 10),
        code(_PREFILL, "cache filled over the whole val stream, then used to score", 8),
        code(_RESCORE, "second pass rescoring with the completed cache", 14),
        folder(NATIVE_CACHE_FOLDER, "the eval's local helper compiles an n-gram cache from C++ with g++ and loads "
               "it with ctypes: the rule cannot read it, so needs-review naming the file", 1,
               file="ngram/fused_expert_kernel.cpp", severity="error"),
    ]

    @path_gated
    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for unit in ctx.units:
            for fn in unit.functions:
                seg = unit.segment(fn)
                if "for " not in seg or not SCORE_ACC.search(seg) or ("+=" not in seg and "-=" not in seg):
                    continue
                loops = list(position_loops(fn))
                if not loops:
                    continue
                info = []
                values = unit.values(fn)
                for loop, var in loops:
                    updates = table_updates(loop, values)
                    tables = {t for t, _, _ in updates}
                    info.append((loop, var, updates, tables, score_lines(loop), table_reads(loop, tables)))
                    # (1) updated with the current token before the read that scores it
                    scores = score_lines(loop)
                    if not scores:
                        continue
                    for table, line, node in updates:
                        if not current_token_refs(getattr(node, "target", node), var):
                            continue
                        reads = [r for t, r in table_reads(loop, {table}) if line < r <= scores[-1]]
                        later_scores = [s for s in scores if s >= line]
                        if reads and later_scores:
                            yield self.finding(
                                f"{fn.name}(): `{table}` is updated with the current token at line {line}, before "
                                f"it is read at line {reads[0]} to score that token (line {later_scores[0]}); the "
                                f"cache must be updated only after the token is scored", unit.name, line,
                                evidence=unit.line_text(line))
                            break
                # (2) prefill before scoring, (3) a second scoring pass over the completed cache
                for i, (l1, _v1, up1, tab1, sc1, _r1) in enumerate(info):
                    for l2, _v2, up2, _tab2, sc2, _r2 in info[i + 1:]:
                        if l2.lineno <= (l1.end_lineno or l1.lineno) or not sc2:
                            continue
                        shared = {t for t, _ in table_reads(l2, tab1)} - {t for t, _, _ in up2}
                        if not shared:
                            continue
                        table = sorted(shared)[0]
                        if not sc1:
                            words = set(words_of(l1))
                            if any("train" in w.lower() for w in words):
                                continue
                            line = next(ln for t, ln, _ in up1 if t == table)
                            yield self.finding(
                                f"{fn.name}(): `{table}` is filled by the loop at line {l1.lineno} over the token "
                                f"stream before the loop at line {l2.lineno} scores with it: tokens are counted "
                                f"before they are scored", unit.name, line, evidence=unit.line_text(line))
                        else:
                            yield self.finding(
                                f"{fn.name}(): the loop at line {l2.lineno} scores the tokens again with `{table}` "
                                f"as completed by the first scoring pass (line {l1.lineno}): a second pass / "
                                f"rescoring (C4)", unit.name, l2.lineno, end_line=sc2[0],
                                evidence=unit.line_text(l2.lineno))
