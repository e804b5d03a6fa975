"""NGRAM-CACHE: eval-time caches must only hold tokens already scored, and are used in a single pass."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.explain import path_state, source_line, where
from harness.scan.pathstate import path_gated
from harness.scan.tables import analyse_tables
from harness.scan.ttt import analyse
from rules._native_samples import NATIVE_CACHE_FOLDER, NATIVE_GEMM_FOLDER
from rules._ttt import MAIN, PRELUDE, by_name_note, line_of
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



# a count cache as a class: looked up for a chunk, then updated with it
_CACHE_CLASS = '''class BigramCache:
    def __init__(self, vocab):
        self.vocab = vocab
        self.counts = {}
        self.ctx = {}

    def prob(self, prev, tok):
        return (self.counts.get((prev, tok), 0) + 0.5) / (self.ctx.get(prev, 0) + 0.5 * self.vocab)

    def update(self, chunk):
        for i in range(1, len(chunk)):
            key = (chunk[i - 1], chunk[i])
            self.counts[key] = self.counts.get(key, 0) + 1
            self.ctx[chunk[i - 1]] = self.ctx.get(chunk[i - 1], 0) + 1

    def build_full(self, tokens):
        self.update(tokens)


def score_chunk(cache, chunk, model_logp):
    nll = 0.0
    for i in range(1, len(chunk)):
        p = 0.5 * math.exp(model_logp(chunk[i])) + 0.5 * cache.prob(chunk[i - 1], chunk[i])
        nll -= math.log(p)
    return nll


'''
_SINGLE_PASS = PRELUDE + "import math\n\n\n" + _CACHE_CLASS + '''def eval_val_ngram(tokens, chunk, model_logp):
    cache = BigramCache(1024)
    loss_sum = 0.0
    for start in range(0, len(tokens) - 1, chunk):
        piece = tokens[start:start + chunk + 1]
        loss_sum += score_chunk(cache, piece, model_logp)
        cache.update(piece)
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_ngram(load_shards(args.val_files).tolist(), 4096, lambda t: -6.9))
''' + MAIN
_FULL_PREBUILD = _SINGLE_PASS.replace('''    cache = BigramCache(1024)
    loss_sum = 0.0
''', '''    cache = BigramCache(1024)
    cache.build_full(tokens)
    loss_sum = 0.0
''').replace('''        loss_sum += score_chunk(cache, piece, model_logp)
        cache.update(piece)
''', '''        loss_sum += score_chunk(cache, piece, model_logp)
''')
_TWO_PASS = _SINGLE_PASS.replace('''        cache.update(piece)
    return loss_sum
''', '''        cache.update(piece)
    final_loss = 0.0
    for start in range(0, len(tokens) - 1, chunk):
        final_loss += score_chunk(cache, tokens[start:start + chunk + 1], model_logp)
    return final_loss
''')
_REPLACE_FIRST = _SINGLE_PASS.replace('''    loss_sum = 0.0
    for start in range(0, len(tokens) - 1, chunk):
        piece = tokens[start:start + chunk + 1]
        loss_sum += score_chunk(cache, piece, model_logp)
        cache.update(piece)
    return loss_sum
''', '''    starts = list(range(0, len(tokens) - 1, chunk))
    chunk_nll = [0.0] * len(starts)
    for ci, start in enumerate(starts):
        piece = tokens[start:start + chunk + 1]
        chunk_nll[ci] = score_chunk(cache, piece, model_logp)
        cache.update(piece)
    for ci in range(min(4, len(starts))):
        chunk_nll[ci] = score_chunk(cache, tokens[starts[ci]:starts[ci] + chunk + 1], model_logp)
    return sum(chunk_nll)
''')
_RESET_BETWEEN = _SINGLE_PASS.replace('''def main():
    args = Hyperparameters()
    print(eval_val_ngram(load_shards(args.val_files).tolist(), 4096, lambda t: -6.9))
''', '''def main():
    args = Hyperparameters()
    tokens = load_shards(args.val_files).tolist()
    print("short chunks", eval_val_ngram(tokens, 1024, lambda t: -6.9))
    print("final", eval_val_ngram(tokens, 4096, lambda t: -6.9))
''')
_AHEAD = _SINGLE_PASS.replace("        cache.update(piece)\n", "        cache.update(tokens[start:start + chunk + 2])\n")
_HASHED_TARGET = PRELUDE + '''def eval_val_mixer(tokens, model_logp, buckets=1 << 20):
    ctx_counts = torch.zeros(buckets)
    full_counts = torch.zeros(buckets)
    loss_sum = 0.0
    for start in range(0, tokens.numel() - 1, 2048):
        x = tokens[start:start + 2048]
        y = tokens[start + 1:start + 2049]
        ctx_key = (x * 36313) % buckets
        full_key = ((x * 36313) ^ (y * 27191)) % buckets
        p_ngram = full_counts[full_key] / ctx_counts[ctx_key].clamp(min=1)
        p = 0.7 * model_logp(x, y).exp() + 0.3 * p_ngram
        loss_sum += -p.log().sum()
        ctx_counts.scatter_add_(0, ctx_key, torch.ones_like(ctx_key, dtype=torch.float))
        full_counts.scatter_add_(0, full_key, torch.ones_like(full_key, dtype=torch.float))
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_mixer(load_shards(args.val_files), lambda x, y: torch.full(y.shape, -6.9)))
''' + MAIN
_CONTEXT_ONLY_KEY = _HASHED_TARGET.replace("        full_key = ((x * 36313) ^ (y * 27191)) % buckets\n", "") \
    .replace("full_counts[full_key] / ctx_counts[ctx_key].clamp(min=1)",
             "(full_counts[ctx_key] == y).float() * 0.9 + 0.1 / 1024") \
    .replace("        full_counts.scatter_add_(0, full_key, torch.ones_like(full_key, dtype=torch.float))\n",
             "        full_counts.index_put_((ctx_key,), y.float())\n")
_PREV_FIRST = '''import math


def eval_val_ngram(val_tokens, vocab, alpha=0.5):
    counts = {}
    ctx_counts = {}
    nll = 0.0
    for p in range(2, len(val_tokens)):
        prev2, prev = val_tokens[p - 2], val_tokens[p - 1]
        counts[(prev2, prev)] = counts.get((prev2, prev), 0) + 1
        ctx_counts[prev2] = ctx_counts.get(prev2, 0) + 1
        c = counts.get((prev, val_tokens[p]), 0)
        nll -= math.log((c + alpha / vocab) / (ctx_counts.get(prev, 0) + alpha))
    return nll
'''
_HINTS_PRECOMPUTED = PRELUDE + '''def build_hints(tokens):
    table = {}
    hints = [-1] * len(tokens)
    for p in range(1, len(tokens)):
        hints[p] = table.get(tokens[p - 1], -1)
        table[tokens[p - 1]] = tokens[p]
    return hints


def eval_val_tilt(tokens, model_logp, beta=1.0):
    hints = build_hints(tokens)
    loss_sum = 0.0
    for p in range(1, len(tokens)):
        bonus = beta if hints[p] == tokens[p] else 0.0
        loss_sum -= model_logp(p) + bonus - math.log1p(math.exp(beta) - 1)
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_tilt(load_shards(args.val_files).tolist(), lambda p: -6.9))
''' + MAIN
_HINTS_PRECOMPUTED = _HINTS_PRECOMPUTED.replace("import torch.nn.functional as F\n", "import torch.nn.functional as F\nimport math\n")
_GATED_TARGET = '''import math


def eval_val_ngram(val_tokens, model_logp, vocab):
    counts = {}
    ctx_counts = {}
    nll = 0.0
    for p in range(1, len(val_tokens)):
        prev, tok = val_tokens[p - 1], val_tokens[p]
        c = counts.get((prev, tok), 0)
        if c > 0:
            lp = math.log(c / ctx_counts[prev])
        else:
            lp = model_logp(p)
        nll -= lp
        counts[(prev, tok)] = c + 1
        ctx_counts[prev] = ctx_counts.get(prev, 0) + 1
    return nll
'''


class NgramCache(Rule):
    ID = "NGRAM-CACHE"
    TITLE = "Eval-time n-gram caches hold only already-scored tokens, single pass"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "medium"
    NATIVE_SUBJECTS = frozenset({"cache"})
    CITATION = Citation("Issue #1017, conditions C3 (score before update) and C4 (single pass)",
                        "Only AFTER that score is fixed may state be updated using x_t.", "#1017")
    RATIONALE = ("A table (dict, Counter, tensor, a custom cache class) written from validation tokens and read "
                 "while scoring may predict x_t only from tokens before t: the lookup for a position comes "
                 "first, the update with its token after, and no lookup runs again over positions the table has "
                 "counted (C3, C4). The scanner follows the table by data flow through methods (`cache.update`, "
                 "`cache.build_full`) and calls, and flags: a table filled over the validation tokens before the "
                 "pass that looks it up (prefill); an update that counts the token being scored before its "
                 "lookup, or past the looked-up slice (`update(tokens[a:b + 1])`); a second pass over the "
                 "completed table, whose losses replace or mix with the first pass's; a pass repeated by an outer "
                 "loop; and a lookup key that carries the target token and is hashed into buckets or gates the "
                 "mix (hashed full-context counts do not renormalise: valerio on #982, the #779 ruling). Tables "
                 "built from training data are EVAL-NO-TRAIN-DATA's concern; compiled kernels are read by "
                 "C1-STRICT-CAUSAL. A path its own configuration turns off is a warning. A cache the submission "
                 "compiles from its own C/C++ sources (ctypes, cpp_extension, g++/nvcc) cannot be read: "
                 "needs-review, naming the source.")
    LEGAL = [
        folder(NATIVE_GEMM_FOLDER, "a compiled C++ GEMM kernel: native code, but no cache to review"),
        code(_CAUSAL, "score from prefix counts, then update with the scored token"),
        code(_TRAIN_TABLE, "bigram table from training tokens; eval reads it keyed by the previous token"),
        code(_SINGLE_PASS, "a cache class: each chunk scored through `cache.prob`, then `cache.update(chunk)`"),
        code(_RESET_BETWEEN, "two separate evaluations, each with a fresh cache built as it scores"),
        code(_PREV_FIRST, "the update at the top of the iteration counts only tokens before the one looked up"),
        code(_HINTS_PRECOMPUTED, "hints precomputed in one causal pass (lookup, then update), then used to score"),
        code(_CONTEXT_ONLY_KEY, "hashed table keyed by the context only; the target is compared after the lookup"),
    ]
    ILLEGAL = [
        code(_UPDATE_FIRST, "counts updated with the current token before it is scored", 10),
        code(_PREFILL, "cache filled over the whole val stream, then used to score", 8),
        code(_RESCORE, "second pass rescoring with the completed cache", 14),
        code(_FULL_PREBUILD, "`cache.build_full(val tokens)` before the scoring loop (a class method, followed)",
             line_of(_FULL_PREBUILD, "self.counts[key] = self.counts.get(key, 0) + 1")),
        code(_TWO_PASS, "the first pass completes the cache; the second pass re-scores every token with it",
             line_of(_TWO_PASS, "return (self.counts.get")),
        code(_REPLACE_FIRST, "the first chunks re-scored with the completed cache, replacing their first-pass losses",
             line_of(_REPLACE_FIRST, "return (self.counts.get")),
        code(_AHEAD, "the update after scoring a chunk counts one token past it (positions >= t)",
             line_of(_AHEAD, "self.ctx[chunk[i - 1]] =")),
        code(_HASHED_TARGET, "the hashed full key mixes in the target token `y`",
             line_of(_HASHED_TARGET, "p_ngram = full_counts[full_key]")),
        code(_GATED_TARGET, "the count of (context, target) decides whether the n-gram or the model scores", 10),
        folder(NATIVE_CACHE_FOLDER, "the eval's local helper compiles an n-gram cache from C++ with g++ and loads "
               "it with ctypes: the rule cannot read it, so needs-review naming the file", 1,
               file="ngram/fused_expert_kernel.cpp", severity="error"),
    ]

    @path_gated
    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        a = analyse(ctx)
        chosen: dict[tuple, tuple] = {}
        for j in analyse_tables(ctx):
            state = path_state(ctx, j.conds)
            severity = "error" if state.runs else "warning"
            anchor = j.read if j.kind in ("rescore", "target-key") else j.update
            key = (j.kind, anchor.unit, anchor.line)
            if key not in chosen or (chosen[key][1] != "error" and severity == "error"):
                chosen[key] = (j, severity, state.note, anchor)
        for j, severity, note, anchor in chosen.values():
            message = _message(j, where)
            if note:
                message = f"{message}; {note}"
            confidence = self.CONFIDENCE
            if anchor.by_name:
                message += "; " + by_name_note(anchor, review=severity == "error")
                confidence = "low"
            evidence = "\n".join(x for x in (source_line(a.texts, j.update), source_line(a.texts, j.read)) if x)
            end = max(anchor.line, j.read.line) if j.kind == "prefill" and j.read and j.read.unit == anchor.unit \
                else anchor.line
            yield self.finding(message, anchor.unit, anchor.line, end_line=end, severity=severity,
                               confidence=confidence, evidence=evidence)


def _message(j, where) -> str:
    table = f"`{j.table}`"
    if j.kind == "prefill":
        return (f"{table} is filled from validation tokens at {where(j.update)} before the pass that looks it up "
                f"at {where(j.read)}: tokens are counted before they are scored (a cache built over the "
                f"validation stream ahead of scoring)")
    if j.kind == "update-first":
        return (f"{table} is updated at {where(j.update)} with the tokens of the same iteration before they are "
                f"looked up at {where(j.read)}: counts from positions >= t shape p_t (update after the score)")
    if j.kind == "ahead":
        return f"{table} is updated at {where(j.update)} past the looked-up tokens ({j.note}): counts from positions >= t"
    if j.kind == "repass":
        return (f"{table} is looked up at {where(j.first)} and updated at {where(j.update)} in a pass that {j.note}: "
                f"later passes score tokens the table has already counted (C4: no second pass)")
    if j.kind == "rescore":
        return (f"{table} is looked up again at {where(j.read)} after the pass that completed it ({j.note}; updated "
                f"at {where(j.update)}): a second pass whose losses replace or mix with the first pass's "
                f"(C4: no rescoring)")
    return f"{table} is looked up at {where(j.read)} with a key built from the target: {j.note}"
