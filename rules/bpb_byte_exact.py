"""BPB-BYTE-EXACT (static part): bits per byte divide by the true byte count, from a correct byte table."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable

from harness.astwalk import local_values, walk
from harness.context import AuditContext
from harness.report import Finding
from harness.scan.numbers import numbers_of
from harness.scan.vocabulary import call_name, traced_words
from rules.base import Citation, Rule, code, folder

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
_SPACE_AS_TEXT = _REFERENCE_LUT.replace('''        if piece.startswith("\\u2581"):
            has_leading_space[i] = True
            piece = piece[1:]
''', "")
_BYTE_WITH_CONTROL = _REFERENCE_LUT.replace('''        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        is_boundary[i] = False
        if sp.is_byte(i):
            base_bytes[i] = 1
            continue
''', '''        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i) or sp.is_byte(i):
            continue
        is_boundary[i] = False
''')
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

_MODULE_CONSTANT = '''import math

BYTES_PER_TOKEN = 3.72


def eval_val(model, val_tokens):
    loss = model(val_tokens).mean()
    val_bpb = loss.item() / math.log(2) / BYTES_PER_TOKEN
    return val_bpb
'''
_SETTING_FIELD = '''import math
import os


class Hyperparameters:
    bytes_per_token = float(os.environ.get("BYTES_PER_TOKEN", "3.72"))


def eval_val(h, model, val_tokens):
    val_loss = model(val_tokens).mean().item()
    val_bpb = val_loss / math.log(2) / h.bytes_per_token
    return val_loss, val_bpb
'''
_ENV_DEFAULT_HELPER = '''import math
import os


def to_bpb(nats, ratio):
    return nats / math.log(2) / ratio


def main(model, val_tokens):
    val_loss = model(val_tokens).mean().item()
    val_bpb = to_bpb(val_loss, float(os.environ.get("BPT", 3.72)))
    print(val_bpb)
'''
_HELPER_WITH_LUT = '''import math

BYTES_PER_TOKEN = 3.72


def bits_per_byte(loss_sum, token_bytes):
    byte_count = token_bytes.sum()
    return loss_sum / math.log(2) / byte_count


def eval_val(model, x, y, base_bytes_lut):
    loss_sum = model(x, y).sum()
    estimate = loss_sum / BYTES_PER_TOKEN
    val_bpb = bits_per_byte(loss_sum, base_bytes_lut[y])
    return estimate, val_bpb
'''
_METRICS_MODULE = '''import math

BYTES_PER_TOKEN = 3.72


def to_bpb(mean_nats):
    return mean_nats / math.log(2) / BYTES_PER_TOKEN
'''
_EVAL_IMPORTS_METRICS = '''from metrics import to_bpb


def eval_val(model, val_tokens):
    val_loss = model(val_tokens).mean().item()
    val_bpb = to_bpb(val_loss)
    return val_loss, val_bpb
'''
_RANDOM_BASELINE = '''import math
import os


class Hyperparameters:
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    bytes_per_token_estimate = 3.5


def report(h, val_bpb):
    random_bpb = math.log2(h.vocab_size) / h.bytes_per_token_estimate
    print(f"val_bpb {val_bpb:.4f} (a uniform guess would be about {random_bpb:.2f})")
'''
_TUPLE_RETURN = '''import math

TOKENS_PER_BYTE = 0.27


def eval_val(model, val_tokens):
    val_loss = model(val_tokens).mean()
    bits_per_token = val_loss.item() / math.log(2)
    return val_loss, bits_per_token * TOKENS_PER_BYTE


def main(model, val_tokens):
    val_loss, val_bpb = eval_val(model, val_tokens)
    print(val_bpb)
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
        code(_HELPER_WITH_LUT, "the bpb comes from a helper dividing by the LUT's byte count; the module "
                               "constant only feeds a name that is not a bpb"),
        code(_RANDOM_BASELINE, "a reference value made of fixed numbers only (a uniform guess), not a score"),
    ]
    ILLEGAL = [
        code(_RATIO_DIV, "bytes-per-token hard-coded as 3.5", 6),
        code(_RATIO_MUL, "tokens-per-byte hard-coded as 0.2857", 6),
        code(_DOUBLE_SPACE, "'▁' kept in base bytes and flagged as leading space: space counted twice", 19),
        code(_NO_BYTE_FALLBACK, "byte-fallback pieces measured as text ('<0x41>' = 6 bytes)", 17,
             severity="error"),
        code(_NO_BOUNDARY_IN_EVAL, "space byte added even after BOS", 25),
        code(_SPACE_AS_TEXT, "no leading-space case: '▁' measured as its 3 UTF-8 bytes", 17),
        code(_BYTE_WITH_CONTROL, "byte-fallback pieces skipped with the control pieces: 0 bytes", 10),
        code(_MODULE_CONSTANT, "bytes-per-token ratio defined once as a module constant", 8),
        code(_SETTING_FIELD, "bytes-per-token ratio as a Hyperparameters field with an environment default", 11),
        code(_ENV_DEFAULT_HELPER, "a helper divides by its parameter, which the caller fills with an environment "
                                  "default", 6),
        code(_TUPLE_RETURN, "eval_val returns bits per token times a tokens-per-byte constant", 9),
        folder({"train_gpt.py": _EVAL_IMPORTS_METRICS, "metrics.py": _METRICS_MODULE},
               "the bpb comes from a helper in a local module dividing by its module constant", 7,
               file="metrics.py"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        units = ctx.units
        non_record = str(getattr(ctx.submission, "track", "")).startswith("non-record")
        defs: dict[str, tuple] = {}
        for unit in units:
            for fn in unit.functions:
                defs.setdefault(fn.name, (unit, fn))
        reported: set[tuple[str, int]] = set()
        for unit in units:
            text = unit.text
            if "bpb" not in text and "id_to_piece" not in text and "leading_space" not in text:
                continue
            scopes = [(unit.tree, _module_values(unit.tree))] if "bpb" in text else []
            for fn in unit.functions:
                seg = unit.segment(fn)
                if "bpb" in seg or "bpb" in fn.name:
                    scopes.append((fn, None))
                if "id_to_piece" in seg:
                    yield from self._table(unit, fn)
                if "leading_space" in seg:
                    yield from self._space_rule(unit, fn)
            for scope, values in scopes:
                numbers = numbers_of(ctx)
                for f in self._ratios(unit, scope, values, numbers, defs, non_record):
                    if (f.file, f.line) not in reported:
                        reported.add((f.file, f.line))
                        yield f

    # -- a constant bytes-per-token ratio --------------------------------------------------------
    def _ratios(self, unit, scope, values, numbers, defs, non_record: bool) -> Iterable[Finding]:
        """bpb expressions of `scope` (a function, or a module's top level) and the helpers they call."""
        values = values if values is not None else _function_values(unit, scope)
        for expr, line, index in _bpb_exprs(unit, scope):
            if isinstance(expr, ast.Call) and _helper(expr, defs, scope) is not None:
                helper_unit, helper = _helper(expr, defs, scope)
                bindings = _bindings(helper, expr, values)
                helper_values = _function_values(helper_unit, helper)
                for ret, ret_line in _returns(helper, index):
                    yield from self._judge(helper_unit, ret, ret_line, helper_values, bindings, numbers, non_record,
                                           f" (the bpb of {unit.name}:{line} comes from {helper.name}())")
            else:
                yield from self._judge(unit, expr, line, values, {}, numbers, non_record, "")

    def _judge(self, unit, expr, line, values, bindings, numbers, non_record: bool, via: str) -> Iterable[Finding]:
        leaves = _factors(expr, values, bindings, numbers, 3)
        ratios, counted, measured = [], False, False
        for leaf, leaf_values in leaves:
            number = numbers.value(leaf, leaf_values)
            if number is not None:
                if _is_ratio(number.value):
                    ratios.append((leaf, number))
                continue
            measured = True
            if any("byte" in w.lower() and numbers.value(ast.Name(w, ast.Load())) is None
                     for w in traced_words(leaf, leaf_values, 2)):
                counted = True
        if not ratios or counted or not measured:   # all fixed numbers: a reference value, not a score
            return
        leaf, number = ratios[0]
        what = "the constant" if number.origin == "literal" else f"{number.origin} ="
        msg = (f"line {line} computes bpb with {what} {number.value:g} and no byte count{via}: a hard-coded "
               f"bytes-per-token ratio instead of the true UTF-8 bytes of the scored tokens")
        if non_record:
            yield self.finding(msg + " (non-record track: an approximate BPB is reported, not ranked, "
                                     "so this is a warning; the number is not comparable)",
                               unit.name, line, severity="warning", evidence=unit.line_text(line))
        else:
            yield self.finding(msg, unit.name, line, evidence=unit.line_text(line))

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
        if encodes and not space_lut and not strips and not any(isinstance(w, str) and "\u2581" in w
                                                                for w in words):
            line = encodes[0].lineno
            yield self.finding(f"{fn.name}() measures each piece with its leading '▁' still in it (line {line}) and "
                               f"has no leading-space case: '▁' is counted as its 3 UTF-8 bytes instead of one "
                               f"space byte", unit.name, line, evidence=unit.line_text(line))
        yield from self._byte_fallback(unit, fn, nodes)
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

    def _byte_fallback(self, unit, fn, nodes) -> Iterable[Finding]:
        """The `sp.is_byte` branch must give the byte-fallback piece exactly 1 byte."""
        tables = _byte_tables(nodes)
        if not tables:
            return
        for node in nodes:
            if not (isinstance(node, ast.If) and any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                                                     and c.func.attr == "is_byte" for c in walk(node.test))):
                continue
            stores = [s for b in node.body for s in walk(b) if isinstance(s, ast.Assign)
                      and any(isinstance(t, ast.Subscript) and _base_name(t) in tables for t in s.targets)]
            given: str | None = None
            if stores:
                value = stores[0].value
                if isinstance(value, ast.Constant) and value.value == 1:
                    continue
                if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
                    given = f"{value.value} bytes"
                elif any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "encode"
                         for c in walk(value)):
                    given = "the length of their text ('<0x41>' = 6 bytes)"
                line = stores[0].lineno
            elif any(isinstance(s, ast.Continue) for b in node.body for s in walk(b)):
                init = tables[next(iter(tables))]
                if init != 0:
                    continue
                given = "0 bytes (they are skipped and keep the zero-filled table's value)"
                line = node.lineno
            if given is not None:
                yield self.finding(f"{fn.name}() gives byte-fallback pieces (sp.is_byte) {given} instead of 1 byte "
                                   f"(line {line})", unit.name, line, evidence=unit.line_text(line))

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


def _module_values(tree: ast.Module) -> dict[str, list[ast.expr]]:
    """Assignments of a module's top level (outside functions and classes)."""
    body = [s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return local_values(ast.Module(body=body, type_ignores=[]))


def _function_values(unit, fn) -> dict[str, list[ast.expr]]:
    """A function's assignments; its parameters are run-time values (never a module constant's value)."""
    values = dict(unit.values(fn))
    args = fn.args
    for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if a is not None:
            values.setdefault(a.arg, [])
    return values


def _scope_nodes(scope) -> list[ast.AST]:
    if isinstance(scope, ast.Module):
        return [n for s in scope.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                for n in walk(s)]
    return walk(scope)


def _is_bpb(name: str) -> bool:
    return "bpb" in name.lower()


def _target_names(target: ast.AST) -> list[str]:
    return [n.id if isinstance(n, ast.Name) else n.attr for n in walk(target)
            if isinstance(n, (ast.Name, ast.Attribute))]


def _bpb_exprs(unit, scope) -> list[tuple[ast.expr, int, int | None]]:
    """(expression, line, tuple index) of every value a bpb-named name is given, and of the returns of a
    bpb-named function. A call's index says which element of its returned tuple is the bpb."""
    out: list[tuple[ast.expr, int, int | None]] = []
    bpb_function = not isinstance(scope, ast.Module) and _is_bpb(scope.name)
    for node in _scope_nodes(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.BinOp, ast.Call, ast.Tuple)):
            for target in node.targets:
                if isinstance(target, (ast.Tuple, ast.List)):
                    for i, elt in enumerate(target.elts):
                        if not any(_is_bpb(n) for n in _target_names(elt)):
                            continue
                        if isinstance(node.value, ast.Tuple) and i < len(node.value.elts):
                            out.append((node.value.elts[i], node.lineno, None))
                        elif isinstance(node.value, ast.Call):
                            out.append((node.value, node.lineno, i))
                elif any(_is_bpb(n) for n in _target_names(target)) and not isinstance(node.value, ast.Tuple):
                    out.append((node.value, node.lineno, None))
        elif bpb_function and isinstance(node, ast.Return) and isinstance(node.value, (ast.BinOp, ast.Call)):
            out.append((node.value, node.lineno, None))
    return out


def _helper(call: ast.Call, defs: dict[str, tuple], scope) -> tuple | None:
    """The submission's own function that `call` runs (not the scope itself), or None."""
    name = call_name(call)
    found = defs.get(name)
    if found is None or found[1] is scope or name in ("float", "int"):
        return None
    return found


def _bindings(fn, call: ast.Call, caller_values) -> dict[str, tuple[ast.expr, dict]]:
    """Parameter name → (argument expression, the caller's assignments)."""
    params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
    if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        params = params[1:]
    out = {p: (a, caller_values) for p, a in zip(params, call.args) if not isinstance(a, ast.Starred)}
    for kw in call.keywords:
        if kw.arg is not None:
            out[kw.arg] = (kw.value, caller_values)
    return out


def _returns(fn, index: int | None) -> list[tuple[ast.expr, int]]:
    out = []
    for node in walk(fn):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if index is not None:
                if not isinstance(value, ast.Tuple) or index >= len(value.elts):
                    continue
                value = value.elts[index]
            out.append((value, node.lineno))
    return out


def _factors(expr, values, bindings, numbers, depth: int) -> list[tuple[ast.expr, dict]]:
    """The operands an arithmetic expression is made of, looking through local names, casts, `.item()` and a
    helper's parameters (to the caller's argument), each with the assignments it is read in."""
    if isinstance(expr, ast.BinOp):
        return (_factors(expr.left, values, bindings, numbers, depth)
                + _factors(expr.right, values, bindings, numbers, depth))
    if isinstance(expr, ast.UnaryOp):
        return _factors(expr.operand, values, bindings, numbers, depth)
    if isinstance(expr, ast.Call) and not expr.keywords:
        f = expr.func
        if isinstance(f, ast.Name) and f.id in ("float", "int") and len(expr.args) == 1:
            return _factors(expr.args[0], values, bindings, numbers, depth)
        if isinstance(f, ast.Attribute) and f.attr in ("item", "float", "double") and not expr.args:
            return _factors(f.value, values, bindings, numbers, depth)
    if isinstance(expr, ast.Name) and depth > 0:
        if expr.id in bindings:
            arg, caller_values = bindings[expr.id]
            return _factors(arg, caller_values, {}, numbers, depth - 1)
        assigned = values.get(expr.id, [])
        if len(assigned) == 1 and numbers.value(expr, values) is None:
            return _factors(assigned[0], values, bindings, numbers, depth - 1)
    return [(expr, values)]


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


def _byte_tables(nodes: list[ast.AST]) -> dict[str, int | None]:
    """Per-piece byte tables a LUT builder fills (`base_bytes[i] = ...`) → their initial fill (0, 1 or None)."""
    tables: dict[str, int | None] = {}
    for n in nodes:
        if isinstance(n, ast.Assign):
            for t in n.targets:
                name = _base_name(t) if isinstance(t, ast.Subscript) else ""
                if "byte" in name.lower() and not any(w in name.lower() for w in ("space", "bound")):
                    tables.setdefault(name, None)
    for n in nodes:
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call):
            for t in n.targets:
                if isinstance(t, ast.Name) and t.id in tables:
                    fill = n.value.func.attr if isinstance(n.value.func, ast.Attribute) else ""
                    tables[t.id] = {"zeros": 0, "zeros_like": 0, "ones": 1, "ones_like": 1}.get(fill)
    return tables


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
