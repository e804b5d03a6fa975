"""C1-STRICT-CAUSAL (static part): features and gates that shape p_t may not read x_t itself."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from harness.astwalk import walk
from harness.context import AuditContext
from harness.report import Finding
from harness.scan.patterns import current_token_refs, position_loops, score_lines
from harness.scan.vocabulary import dotted
from rules.base import Citation, Rule, code, folder

GATE_LUT = re.compile(r"bnd|bound|space|(?:^|_)ws(?:_|$)|word|punct|gate|(?:^|_)is_|flag|class", re.I)
GATE_INDEX_TEXT = re.compile(r"(?:bnd|bound|space|ws|word|punct|gate|is_\w*|flag|class)\w*\s*\[", re.I)
TARGET_INDEX_TEXT = re.compile(r"\[\s*(?:y|y_batch|yb|tgts?|targets?|labels?|next_tok\w*|gold)\b")
HASH_TEXT = re.compile(r"hash\w*\(|\^|%|<<")
NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".h", ".hpp")
CPP_TARGET_VAR = re.compile(r"\b(\w+)\s*=\s*[^;=]*\btokens\w*\s*\[\s*p\s*\]")
CPP_CURRENT_TOKEN = re.compile(r"tokens\w*\s*\[\s*p\s*\]")
CPP_HINT_OUT = re.compile(r"\bhints?\w*\s*\[[^\]]*\]\s*=[^=]")
CPP_CLASS_LOOKUP = re.compile(r"\b(\w*(?:bnd|bound|has_ls|is_ws|space|word)\w*)\s*\[\s*([^\]\[]+(?:\[[^\]]*\])?)\s*\]")
TARGET_NAME = re.compile(r"^(?:y|y_batch|yb|tgt|tgts|target|targets|labels?|next_tok(?:en)?s?|gold)$")

_PREFIX_GATE = '''import math


def eval_val_hints(val_tokens, is_bnd, model_logp, hints, beta):
    nll = 0.0
    word_len = 0
    for p in range(1, len(val_tokens)):
        boundary = is_bnd[val_tokens[p - 1]]
        hint = hints.get(word_len) if not boundary else None
        lp = model_logp(p)
        if hint is not None:
            lp = lp + beta * (val_tokens[p] == hint) - math.log1p(math.exp(beta) - 1)
        nll -= lp
        tok_is_bnd = is_bnd[val_tokens[p]]
        word_len = 0 if tok_is_bnd else word_len + 1
    return nll
'''
_TARGET_GATE = _PREFIX_GATE.replace("boundary = is_bnd[val_tokens[p - 1]]", "boundary = is_bnd[val_tokens[p]]")
_TARGET_WORD = '''def eval_val_word(val_tokens, starts_word, model_logp, word_bonus):
    total_nll = 0.0
    for p in range(1, len(val_tokens)):
        lp = model_logp(p)
        if starts_word[val_tokens[p]]:
            lp = lp + word_bonus
        total_nll -= lp
    return total_nll
'''
_VECTOR_TARGET = '''import torch.nn.functional as F


def eval_val_sliding(model, x, y, is_boundary_lut, beta):
    logits = model(x)
    logits = logits + beta * is_boundary_lut[y].unsqueeze(-1).float()
    return F.cross_entropy(logits, y, reduction="sum")
'''
_HASH_KEY = '''def eval_val_hashed(val_tokens, table, model_logp, beta, mask):
    nll = 0.0
    for p in range(2, len(val_tokens)):
        h = (val_tokens[p - 1] * 1000003 ^ val_tokens[p]) & mask
        hint = table.get(h)
        lp = model_logp(p)
        if hint is not None:
            lp = lp + beta * (hint == val_tokens[p])
        nll -= lp
    return nll
'''
_HASH_PREFIX = _HASH_KEY.replace("(val_tokens[p - 1] * 1000003 ^ val_tokens[p])",
                                 "(val_tokens[p - 2] * 1000003 ^ val_tokens[p - 1])")
_CPP_FIXED = """for (int i = 0; i < n; i++) {
    int64_t p = pos[i];
    auto tok = uint16_t(tokens_[p]);
    auto prev_tok = (p > 0) ? uint16_t(tokens_[p - 1]) : uint16_t(0);
    bool is_bnd = is_bnd_ && is_bnd_[prev_tok];
    within_hint(is_bnd, within_tok, within_b);
    hints[i] = within_tok;
    bool tok_is_bnd = is_bnd_ && is_bnd_[tok];
    within_update(tok, tok_is_bnd);
}
"""
_CPP_LEAK = _CPP_FIXED.replace("bool is_bnd = is_bnd_ && is_bnd_[prev_tok];", "bool is_bnd = is_bnd_ && is_bnd_[tok];")
_BYTES = '''def eval_val(model, x, y, base_bytes_lut, has_leading_space_lut, is_boundary_token_lut):
    loss_sum = model(x, y)
    token_bytes = base_bytes_lut[y] + (has_leading_space_lut[y] & ~is_boundary_token_lut[x])
    return loss_sum, token_bytes.sum()
'''
_VECTOR_PREV = '''def eval_val_sliding(model, x, y, is_boundary_lut, beta):
    logits = model(x)
    logits = logits + beta * is_boundary_lut[x].unsqueeze(-1).float()
    return logits
'''


class C1StrictCausal(Rule):
    ID = "C1-STRICT-CAUSAL"
    TITLE = "Gates and features used to score x_t depend only on the prefix"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "eval")
    CONFIDENCE = "medium"
    NATIVE_SUBJECTS = frozenset({"scorer"})
    CITATION = Citation("Issue #1017, condition C1",
                        "p_t(·) must be a function only of the submitted artifact A and the strict prefix "
                        "x_1, …, x_{t−1}", "#1017")
    RATIONALE = ("A boundary/word/space lookup of the token being scored (`is_bnd[tokens[p]]`, "
                 "`is_boundary_lut[y]`) that decides a hint, a gate or a logit offset before x_t is scored "
                 "makes p_t depend on x_t (the PR #1420 n-gram expert leak; fixed by reading "
                 "`tokens[p-1]`). The same lookup after the score, to update state, is fine, as are byte "
                 "counts of the target. The static part sees position loops (`for p in range(...)`), hashed "
                 "context keys that mix in x_t, logits adjusted with a target-indexed table, and shipped C/C++ "
                 "hint kernels (a class of `tokens_[p]` read before `hints[i] =`); the flip test (RUNTIME) is "
                 "the decisive check.")
    LEGAL = [
        code(_PREFIX_GATE, "gate from the previous token; the target's class is read only after scoring, to update"),
        code(_BYTES, "byte counts of the target are not part of p_t"),
        code(_VECTOR_PREV, "logit offset from the input (previous) tokens"),
        code(_HASH_PREFIX, "context hash of the two previous tokens"),
        folder({"train_gpt.py": "print(1)\n", "ngram/kernel.cpp": _CPP_FIXED},
               "C++ hint kernel gated on the previous token; the target's class is read after the hint is written"),
    ]
    ILLEGAL = [
        code(_TARGET_GATE, "hint gate reads the boundary class of the token being scored", 8),
        code(_TARGET_WORD, "word-start bonus decided by the target token", 5),
        code(_VECTOR_TARGET, "logits shifted by a table indexed with the targets", 6),
        code(_HASH_KEY, "the context hash that selects the hint mixes in the token being scored", 4),
        folder({"train_gpt.py": "print(1)\n", "ngram/kernel.cpp": _CPP_LEAK},
               "C++ hint kernel gated on the boundary class of the target token (the PR #1420 leak)", 5,
               file="ngram/kernel.cpp"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        yield from self._native(sub)
        for unit in ctx.units:
            for fn in unit.functions:
                seg = unit.segment(fn)
                gate = bool(GATE_INDEX_TEXT.search(seg))
                hashy = bool(HASH_TEXT.search(seg))
                vector = "logit" in seg and bool(TARGET_INDEX_TEXT.search(seg))
                if not (gate or hashy or vector):
                    continue
                # position loops: a gate lookup of the current token before the score is fixed
                if (gate or hashy) and "for " in seg and "range(" in seg:
                    for loop, var in position_loops(fn):
                        scores = score_lines(loop)
                        if not scores:
                            continue
                        first_score = scores[0]
                        for n in unit.walk(loop) if gate else ():
                            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) \
                                    and GATE_LUT.search(dotted(n.value)) and n.lineno < first_score \
                                    and current_token_refs(n.slice, var):
                                yield self.finding(
                                    f"{fn.name}(): line {n.lineno} looks up `{ast.unparse(n)[:80]}` — a class of "
                                    f"the token being scored — before its score is fixed (line {first_score}); "
                                    f"a gate or feature of p_t may read only tokens before position `{var}`",
                                    unit.name, n.lineno, evidence=unit.line_text(n.lineno))
                                break
                        if hashy:
                            yield from self._hashed_keys(unit, fn, loop, var, first_score)
                # vectorised: logits adjusted with a table indexed by the targets
                if vector:
                    for n in unit.walk(fn):
                        if not (isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult))):
                            continue
                        sides = (n.left, n.right)
                        logit_side = any("logit" in w.lower() for s in sides for w in _names(s))
                        if not logit_side:
                            continue
                        for s in sides:
                            hit = _target_lut(s)
                            if hit:
                                yield self.finding(
                                    f"{fn.name}(): line {n.lineno} shifts the logits with `{hit}`, a table "
                                    f"indexed by the targets being scored: p_t depends on x_t",
                                    unit.name, n.lineno, evidence=unit.line_text(n.lineno))
                                break


    def _native(self, sub) -> Iterable[Finding]:
        """Shipped C/C++/CUDA helpers (n-gram kernels): a boundary/space class of the target token read before
        the hint for that position is written."""
        for name in sorted(getattr(sub, "files", {})):
            if not name.endswith(NATIVE_SUFFIXES):
                continue
            try:
                text = sub.read_bytes(name, limit=4 * 1024 * 1024).decode("utf-8", errors="replace")
            except Exception:  # noqa: BLE001 - unreadable helper: RECORDS-FOLDER reports it
                continue
            if "hint" not in text:
                continue
            lines = text.splitlines()
            targets: dict[str, int] = {}
            for i, line in enumerate(lines, 1):
                for m in CPP_TARGET_VAR.finditer(line):
                    targets[m.group(1)] = i
                out = CPP_HINT_OUT.search(line)
                if out:
                    targets.clear()
                    continue
                for m in CPP_CLASS_LOOKUP.finditer(line):
                    index = m.group(2).strip()
                    direct = CPP_CURRENT_TOKEN.fullmatch(index)
                    if direct or index in targets:
                        yield self.finding(
                            f"{name}:{i} reads `{m.group(0)}`, the class of the token at the position being "
                            f"predicted, before that position's hint is written: the hint depends on x_t",
                            name, i, evidence=line.strip()[:200])
                        return

    def _hashed_keys(self, unit, fn, loop, var, first_score) -> Iterable[Finding]:
        """A hashed context key (`hash(...)`, `a * P ^ b`, `% size`) that includes the current token and is
        used to read a table before the score: the 'context' contains x_t."""
        keys: dict[str, int] = {}
        for n in unit.walk(loop):
            if isinstance(n, ast.Assign) and n.lineno < first_score and _is_hash(n.value) \
                    and current_token_refs(n.value, var):
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        keys[t.id] = n.lineno
        if not keys:
            return
        for n in unit.walk(loop):
            line = getattr(n, "lineno", 0)
            if line >= first_score:
                continue
            used = None
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
                used = [w.id for w in walk(n.slice) if isinstance(w, ast.Name) and w.id in keys]
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and dotted(n.func.value):
                used = [w.id for a in n.args for w in walk(a) if isinstance(w, ast.Name) and w.id in keys]
            if used:
                key_line = keys[used[0]]
                yield self.finding(
                    f"{fn.name}(): the hashed context key `{used[0]}` (line {key_line}) mixes in the token being "
                    f"scored, and line {line} reads a table with it before the score is fixed (line {first_score}): "
                    f"the context may only hash tokens before position `{var}`", unit.name, key_line,
                    end_line=line, evidence=unit.line_text(key_line))
                return


def _is_hash(node: ast.AST) -> bool:
    for n in walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("hash", "hash_tokens", "fnv",
                                                                                         "murmur", "xxhash"):
            return True
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitXor, ast.BitAnd, ast.Mod, ast.LShift)):
            return True
    return False


def _names(node: ast.AST) -> list[str]:
    return [n.id if isinstance(n, ast.Name) else n.attr for n in walk(node)
            if isinstance(n, (ast.Name, ast.Attribute))]


def _target_lut(node: ast.AST) -> str | None:
    for n in walk(node):
        if isinstance(n, ast.Subscript) and GATE_LUT.search(dotted(n.value)):
            idx = n.slice
            base = idx
            while isinstance(base, (ast.Subscript, ast.Attribute, ast.Call)):
                base = base.value if not isinstance(base, ast.Call) else base.func
            if isinstance(base, ast.Name) and TARGET_NAME.match(base.id):
                return ast.unparse(n)[:80]
    return None
