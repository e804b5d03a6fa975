"""BPB-BYTE-EXACT (static part): bits per byte divide by the true byte count, from a correct byte table."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable

from harness.astwalk import walk
from harness.context import AuditContext
from harness.report import Finding
from rules.base import Citation, Rule, code

_REFERENCE_LUT = '''import numpy as np


def build_sentencepiece_luts(sp, vocab_size):
    n = int(sp.vocab_size())
    base_bytes = np.zeros(max(n, vocab_size), dtype=np.int16)
    has_leading_space = np.zeros(max(n, vocab_size), dtype=np.bool_)
    is_boundary = np.ones(max(n, vocab_size), dtype=np.bool_)
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        is_boundary[i] = False
        if sp.is_byte(i):
            base_bytes[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith("\\u2581"):
            has_leading_space[i] = True
            piece = piece[1:]
        base_bytes[i] = len(piece.encode("utf-8"))
    return base_bytes, has_leading_space, is_boundary


def bpb_from_sums(loss_sum, x_prev, y, base_bytes, has_leading_space, is_boundary):
    token_bytes = base_bytes[y] + (has_leading_space[y] & ~is_boundary[x_prev])
    val_bpb = loss_sum / math.log(2.0) / token_bytes.sum()
    return val_bpb
'''
_RATIO_DIV = '''import math


def eval_val(loss_sum, token_count):
    val_loss = loss_sum / token_count
    val_bpb = val_loss / (math.log(2) * 3.5)
    return val_loss, val_bpb
'''
_RATIO_MUL = '''import math


def final_metrics(val_loss):
    bits_per_token = val_loss / math.log(2)
    val_bpb = bits_per_token * 0.2857
    return val_bpb
'''
_DOUBLE_SPACE = _REFERENCE_LUT.replace('''            has_leading_space[i] = True
            piece = piece[1:]''', '''            has_leading_space[i] = True''')
_NO_BYTE_FALLBACK = _REFERENCE_LUT.replace('''        if sp.is_byte(i):
            base_bytes[i] = 1
            continue
''', "")
_NO_BOUNDARY_IN_EVAL = _REFERENCE_LUT.replace("(has_leading_space[y] & ~is_boundary[x_prev])",
                                              "has_leading_space[y]")
_CASEOPS = '''import math


def eval_val(loss_sum, val_bytes, raw_start, raw_end):
    byte_count = val_bytes[raw_start + 1:raw_end].sum()
    val_bpb = loss_sum / (math.log(2.0) * byte_count)
    return val_bpb
'''
_BYTE_LEVEL = '''import math


def eval_bytes(loss_sum, n_bytes):
    val_bpb = loss_sum / n_bytes / math.log(2)
    progress_pct = 100.0 * n_bytes / 151_130_112
    return val_bpb, progress_pct
'''


class BpbByteExact(Rule):
    ID = "BPB-BYTE-EXACT"
    TITLE = "val_bpb divides by true UTF-8 bytes (no hard-coded ratio, correct byte table)"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("Issue #1017, section V", "Do not hardcode a bytes-per-token ratio.", "#1017")
    RATIONALE = ("val_bpb = (sum of CE nats / ln 2) / (UTF-8 bytes of the scored text). Byte counts come from "
                 "the tokenizer's piece table: BOS/EOS/UNK/control pieces 0 bytes, byte-fallback pieces 1 byte, "
                 "a leading '▁' stripped from the piece and counted as one space byte only when the previous "
                 "token is not a boundary (reference build_sentencepiece_luts + eval_val). Flagged: a constant "
                 "bytes-per-token ratio in a bpb expression, a '▁' kept inside the base bytes while also marked "
                 "as a leading space (counted twice), byte-fallback or control pieces without their special "
                 "case, and a space byte added without the previous-token boundary check. A CaseOps byte "
                 "sidecar (`val_bytes`) replaces the table and is fine. On the non-record track a disclosed "
                 "approximate ratio is a warning (a merged non-record diffusion entry reports one), since its "
                 "number is shown but not ranked.")
    LEGAL = [
        code(_REFERENCE_LUT, "the reference byte table and formula"),
        code(_CASEOPS, "CaseOps: bytes from the per-token sidecar"),
        code(_BYTE_LEVEL, "byte-level model: bytes counted directly; 100.0 is a percentage, not in a bpb"),
    ]
    ILLEGAL = [
        code(_RATIO_DIV, "bytes-per-token hard-coded as 3.5", 6),
        code(_RATIO_MUL, "tokens-per-byte hard-coded as 0.2857", 6),
        code(_DOUBLE_SPACE, "'▁' kept in base bytes and flagged as leading space: space counted twice", 19),
        code(_NO_BYTE_FALLBACK, "byte-fallback pieces measured as text ('<0x41>' = 6 bytes)", 17,
             severity="error"),
        code(_NO_BOUNDARY_IN_EVAL, "space byte added even after BOS", 25),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission

        for unit in ctx.units:
            text = unit.text
            if "bpb" not in text and "id_to_piece" not in text and "leading_space" not in text:
                continue
            for fn in unit.functions:
                seg = unit.segment(fn)
                if "bpb" in seg or "bpb" in fn.name:
                    yield from self._ratios(unit, fn, str(getattr(sub, "track", "")).startswith("non-record"))
                if "id_to_piece" in seg:
                    yield from self._table(unit, fn)
                if "leading_space" in seg:
                    yield from self._space_rule(unit, fn)

    # -- a constant bytes-per-token ratio --------------------------------------------------------
    def _ratios(self, unit, fn, non_record: bool) -> Iterable[Finding]:
        from harness.scan.patterns import traced_words

        values = unit.values(fn)
        exprs: list[tuple[ast.expr, int]] = []
        for node in unit.walk(fn):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp):
                names = [n.id if isinstance(n, ast.Name) else n.attr for t in node.targets for n in walk(t)
                         if isinstance(n, (ast.Name, ast.Attribute))]
                if any("bpb" in n.lower() for n in names):
                    exprs.append((node.value, node.lineno))
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.BinOp) and "bpb" in fn.name.lower():
                exprs.append((node.value, node.lineno))
        for expr, line in exprs:
            words = traced_words(expr, values, 1)
            if any("byte" in w.lower() for w in words):
                continue
            for n in walk(expr):
                if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool) \
                        and _is_ratio(float(n.value)):
                    msg = (f"line {line} computes bpb with the constant {n.value} and no byte count: a "
                           f"hard-coded bytes-per-token ratio instead of the true UTF-8 bytes")
                    if non_record:
                        yield self.finding(msg + " (non-record track: an approximate BPB is reported, not ranked, "
                                                 "so this is a warning; the number is not comparable)",
                                           unit.name, line, severity="warning", evidence=unit.line_text(line))
                    else:
                        yield self.finding(msg, unit.name, line, evidence=unit.line_text(line))
                    break

    # -- the piece → bytes table -----------------------------------------------------------------------
    def _table(self, unit, fn) -> Iterable[Finding]:
        nodes = unit.walk(fn)
        words = {w for n in nodes for w in ([n.attr] if isinstance(n, ast.Attribute) else
                                            [n.id] if isinstance(n, ast.Name) else
                                            [n.value] if isinstance(n, ast.Constant) and isinstance(n.value, str)
                                            else [])}
        if not any("byte" in w.lower() for w in words if isinstance(w, str)):
            return
        strips = any(_strips_space(n) for n in nodes)
        space_lut = [n for n in nodes if isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Subscript) and "space" in _base_name(t).lower() for t in n.targets)]
        encodes = [n for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                   and n.func.attr == "encode"]
        if space_lut and encodes and not strips:
            line = encodes[0].lineno
            yield self.finding(f"{fn.name}() marks '▁' pieces as having a leading space (line {space_lut[0].lineno}) "
                               f"but measures the piece with '▁' still in it (line {line}): the space byte is "
                               f"counted in the base bytes and again when scoring", unit.name, line,
                               evidence=unit.line_text(line))
        if encodes and "is_byte" not in words and not any(isinstance(w, str) and "<0x" in w for w in words):
            line = encodes[0].lineno
            yield self.finding(f"{fn.name}() has no byte-fallback case (sp.is_byte): pieces like '<0x41>' are "
                               f"measured as text (6 bytes) instead of 1 byte", unit.name, line,
                               confidence="medium", evidence=unit.line_text(line))
        if encodes and not words & {"is_control", "is_unknown", "is_unused", "bos_id", "eos_id", "unk_id"}:
            line = encodes[0].lineno
            yield self.finding(f"{fn.name}() gives control/unknown pieces ('<s>', '</s>', '<unk>') their text "
                               f"length instead of 0 bytes", unit.name, line, confidence="medium",
                               evidence=unit.line_text(line))

    # -- the space byte in the eval loop -------------------------------------------------------------
    def _space_rule(self, unit, fn) -> Iterable[Finding]:
        for node in unit.walk(fn):
            if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
                continue
            sides = (node.left, node.right)
            space = [s for s in sides if _subscript_of(s, "leading_space")]
            base = [s for s in sides if _subscript_of(s, "byte")]
            if not space or not base:
                continue
            words = {w.lower() for s in space for w in _words(s)}
            if not any("bound" in w or "bnd" in w or "bos" in w for w in words):
                yield self.finding(f"line {node.lineno} adds the leading-space byte without checking that the "
                                   f"previous token is not a boundary (BOS): a space is counted at every "
                                   f"document start", unit.name, node.lineno, confidence="medium",
                                   evidence=unit.line_text(node.lineno))


def _is_ratio(c: float) -> bool:
    if not 0.1 < abs(c) < 10.0:
        return False
    if c in (1.0, 2.0, 8.0, 0.5, 10.0):
        return False
    return not any(math.isclose(c, k, rel_tol=2e-3) for k in (math.log(2), 1 / math.log(2), math.e))


def _strips_space(n: ast.AST) -> bool:
    if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Slice) and n.slice.upper is None \
            and n.slice.lower is not None and not (isinstance(n.slice.lower, ast.Constant)
                                                   and n.slice.lower.value == 0):
        return True
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in (
            "lstrip", "replace", "removeprefix", "strip", "split", "sub"):
        return any(isinstance(a, ast.Constant) and isinstance(a.value, str) and "\u2581" in a.value
                   for a in n.args)
    return False


def _base_name(node: ast.AST) -> str:
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Call)):
        if isinstance(node, ast.Attribute):
            return node.attr
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else ""


def _subscript_of(node: ast.AST, word: str) -> bool:
    for n in walk(node):
        if isinstance(n, ast.Subscript) and word in _base_name(n).lower():
            return True
    return False


def _words(node: ast.AST) -> list[str]:
    return [n.id if isinstance(n, ast.Name) else n.attr for n in walk(node)
            if isinstance(n, (ast.Name, ast.Attribute))]
