"""Eval-time tables followed by data flow (harness.scan.tables, NGRAM-CACHE)."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.scan.model import Program
from harness.scan.trace import trace
from harness.submission import Submission
from rules._ttt import MAIN, PRELUDE
from rules.ngram_cache import _SINGLE_PASS, NgramCache


def events_of(source: str) -> list:
    return trace(Program([CodeUnit("train_gpt.py", source, ast.parse(source))]))


def ngram_findings(source: str, tmp_path: Path) -> list:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Table"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(source)
    return list(NgramCache().check(AuditContext(Submission(folder, str(folder)))))


def test_a_batch_filled_by_position_is_no_table():
    source = PRELUDE + '''def eval_val_batches(model, tokens, n):
    loss_sum = torch.zeros(())
    x = torch.zeros(4, n, dtype=torch.long)
    for b in range(4):
        x[b, :n] = tokens[b * n:(b + 1) * n]
    with torch.no_grad():
        loss_sum += model(x).sum()
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_batches(torch.nn.Linear(8, 8), load_shards(args.val_files), 128))
''' + MAIN
    assert not [e for e in events_of(source) if e.kind in ("update", "read")]


def test_a_table_is_named_by_the_object_its_method_was_called_on():
    updates = [e for e in events_of(_SINGLE_PASS) if e.kind == "update"]
    assert updates and {e.table[-2:] for e in updates} == {("cache.counts", "self.counts"), ("cache.ctx", "self.ctx")}


SHARED = _SINGLE_PASS.replace('''def eval_val_ngram(tokens, chunk, model_logp):
    cache = BigramCache(1024)
''', '''def eval_val_ngram(cache, tokens, chunk, model_logp):
''').replace('''    print(eval_val_ngram(load_shards(args.val_files).tolist(), 4096, lambda t: -6.9))
''', '''    cache = BigramCache(1024)
    tokens = load_shards(args.val_files).tolist()
    print("pass 1", eval_val_ngram(cache, tokens, 4096, lambda t: -6.9))
    print("pass 2", eval_val_ngram(cache, tokens, 4096, lambda t: -6.9))
''')


def test_a_cache_object_reused_by_a_second_evaluation_is_a_rescore(tmp_path):
    (f,) = [f for f in ngram_findings(SHARED, tmp_path) if f.severity == "error"]
    assert "looked up again" in f.message and "C4" in f.message


def test_a_reset_between_two_evaluations_starts_a_new_pass(tmp_path):
    source = SHARED.replace('''    print("pass 2",''', '''    cache.reset()
    print("pass 2",''').replace('''    def build_full(self, tokens):''', '''    def reset(self):
        self.counts = {}
        self.ctx = {}

    def build_full(self, tokens):''')
    assert not ngram_findings(source, tmp_path)


def test_counts_of_the_whole_stream_in_one_call_are_a_prefill(tmp_path):
    source = PRELUDE + '''def eval_val_unigram(tokens, model_logp, vocab=1024):
    counts = torch.bincount(tokens, minlength=vocab).float()
    loss_sum = 0.0
    for p in range(1, tokens.numel()):
        loss_sum -= 0.5 * model_logp(p) + 0.5 * (counts[tokens[p]] / tokens.numel()).log()
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_unigram(load_shards(args.val_files), lambda p: -6.9))
''' + MAIN
    (f,) = ngram_findings(source, tmp_path)
    assert f.severity == "error" and "before the pass that looks it up" in f.message
    assert f.line == source.splitlines().index("    counts = torch.bincount(tokens, minlength=vocab).float()") + 1


def test_scatter_counts_before_scoring_are_a_prefill_and_after_are_legal(tmp_path):
    legal = PRELUDE + '''import numpy as np


def eval_val_counts(tokens, model_logp, vocab=1024):
    counts = np.zeros(vocab)
    loss_sum = 0.0
    for start in range(0, len(tokens) - 1, 512):
        piece = tokens[start:start + 513]
        loss_sum -= np.log((counts[piece[1:]] + 1) / (counts.sum() + vocab)).sum()
        np.add.at(counts, piece[1:], 1)
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_counts(load_shards(args.val_files).numpy(), lambda p: -6.9))
''' + MAIN
    assert not ngram_findings(legal, tmp_path / "a")
    illegal = legal.replace('''    loss_sum = 0.0
''', '''    np.add.at(counts, tokens, 1)
    loss_sum = 0.0
''').replace("        np.add.at(counts, piece[1:], 1)\n", "")
    (f,) = ngram_findings(illegal, tmp_path / "b")
    assert f.severity == "error" and "filled from validation tokens" in f.message


def test_a_hashed_key_through_a_bucket_method_carries_the_target(tmp_path):
    source = PRELUDE + '''class Mixer:
    def __init__(self, buckets):
        self.buckets = buckets
        self.full = torch.zeros(buckets)
        self.ctx = torch.zeros(buckets)

    def _bucket(self, h):
        return h % self.buckets

    def score(self, x_batch, y_batch, model_p):
        ctx_h = x_batch * 36313
        full_key = self._bucket(ctx_h ^ (y_batch * 27191))
        ctx_key = self._bucket(ctx_h)
        p = self.full[full_key] / self.ctx[ctx_key].clamp(min=1)
        return -(0.5 * model_p + 0.5 * p).log()

    def update(self, tokens):
        ctx_h = tokens[:-1] * 36313
        self.ctx.scatter_add_(0, self._bucket(ctx_h), torch.ones(tokens.numel() - 1))
        self.full.scatter_add_(0, self._bucket(ctx_h ^ (tokens[1:] * 27191)), torch.ones(tokens.numel() - 1))


def eval_val_mix(tokens, chunk):
    mixer = Mixer(1 << 20)
    loss_sum = torch.zeros(())
    for start in range(0, tokens.numel() - 1, chunk):
        piece = tokens[start:start + chunk + 1]
        loss_sum += mixer.score(piece[:-1], piece[1:], torch.full((chunk,), 0.001)).sum()
        mixer.update(piece)
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_mix(load_shards(args.val_files), 2048))
''' + MAIN
    (f,) = ngram_findings(source, tmp_path)
    assert f.severity == "error" and "`y_batch`" in f.message and "hashes" in f.message
    assert f.line == source.splitlines().index("        p = self.full[full_key] / self.ctx[ctx_key].clamp(min=1)") + 1


BINCOUNT_PASS = PRELUDE + '''import numpy as np


def eval_val_unigram(tokens, vocab=1024):
    counts = np.zeros(vocab)
    loss_sum = 0.0
    for start in range(0, len(tokens) - 1, 512):
        piece = tokens[start + 1:start + 513]
        loss_sum -= np.log((counts[piece] + 1) / (counts.sum() + vocab)).sum()
        counts += np.bincount(piece, minlength=vocab)
    hits = int((counts[tokens] > 0).sum())
    print("cache hits", hits)
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_unigram(load_shards(args.val_files).numpy()))
''' + MAIN


def test_counts_added_after_each_chunk_and_a_statistic_after_the_pass_are_legal(tmp_path):
    assert [e for e in events_of(BINCOUNT_PASS) if e.kind == "update"]
    assert not ngram_findings(BINCOUNT_PASS, tmp_path)


def test_a_second_pass_over_the_added_counts_is_flagged(tmp_path):
    source = BINCOUNT_PASS.replace('''    hits = int((counts[tokens] > 0).sum())
    print("cache hits", hits)
''', '''    loss_sum = 0.0
    for start in range(0, len(tokens) - 1, 512):
        piece = tokens[start + 1:start + 513]
        loss_sum -= np.log((counts[piece] + 1) / (counts.sum() + vocab)).sum()
''')
    (f,) = ngram_findings(source, tmp_path)
    assert f.severity == "error" and "looked up again" in f.message


def test_scratch_tables_and_position_keys_are_no_caches(tmp_path):
    source = PRELUDE + '''def eval_val_mix(tokens, model_probs, counts, vocab=1024):
    total_bits = 0.0
    for p in range(1, len(tokens)):
        probs = {}
        for b, c in counts.get(tokens[p - 1], {}).items():
            probs[b] = 0.5 * c + 0.5 * model_probs(p)[b]
        total_bits -= math.log2(probs.get(tokens[p], 1e-9) / sum(probs.values()))
        scored = torch.zeros(8)
        hit = torch.nonzero(torch.tensor(list(probs.values())) > 0.1)[:, 0]
        scored[hit] = 1.0
        total_bits += float(scored[hit].sum()) * 0.0
    return total_bits


def main():
    args = Hyperparameters()
    print(eval_val_mix(load_shards(args.val_files).tolist(), lambda p: [0.001] * 1024, {}))
''' + MAIN
    source = source.replace("import torch.nn.functional as F\\n", "import torch.nn.functional as F\\nimport math\\n")
    assert [e for e in events_of(source) if e.kind == "update"]
    assert not ngram_findings(source, tmp_path)


def test_a_unigram_count_of_the_target_under_a_mask_is_no_hashed_key(tmp_path):
    source = PRELUDE + '''def eval_val_unigram(tokens, chunk, vocab=1024):
    uni = torch.zeros(vocab)
    loss_sum = torch.zeros(())
    pos = torch.arange(chunk)
    for start in range(0, tokens.numel() - 1, chunk):
        y = tokens[start + 1:start + chunk + 1]
        active = (pos >= 0) & (pos < y.numel())
        rows = torch.where(active)[0]
        p = (uni[y[rows]] + 0.5) / (uni.sum() + 0.5 * vocab)
        loss_sum += -p.log().sum()
        uni.index_add_(0, y, torch.ones(y.numel()))
    return loss_sum


def main():
    args = Hyperparameters()
    print(eval_val_unigram(load_shards(args.val_files), 2048))
''' + MAIN
    assert [e for e in events_of(source) if e.kind == "read"]
    assert not ngram_findings(source, tmp_path)


def test_nested_counters_built_over_the_stream_before_scoring(tmp_path):
    source = PRELUDE + '''from collections import Counter


class ContextTable:
    def __init__(self):
        self.table = {}

    def add_all(self, tokens):
        for i in range(1, len(tokens)):
            self.table.setdefault(tokens[i - 1], Counter())[tokens[i]] += 1

    def prob(self, prev, tok):
        row = self.table.get(prev, {})
        return (row.get(tok, 0) + 1) / (sum(row.values()) + 1024)


def eval_val_table(tokens):
    table = ContextTable()
    table.add_all(tokens)
    nll = 0.0
    for p in range(1, len(tokens)):
        nll -= math.log(table.prob(tokens[p - 1], tokens[p]))
    return nll


def main():
    args = Hyperparameters()
    print(eval_val_table(load_shards(args.val_files).tolist()))
''' + MAIN
    source = source.replace("import torch.nn.functional as F\n", "import torch.nn.functional as F\nimport math\n")
    (f,) = ngram_findings(source, tmp_path)
    assert f.severity == "error" and "`self.table`" in f.message and "before the pass that looks it up" in f.message
