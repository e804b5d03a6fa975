"""GPTQ-CALIB-NO-VAL: quantization calibration (Hessians) and post-hoc settings must not be fitted on val."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from harness.astwalk import walk
from harness.context import AuditContext
from harness.report import Finding
from rules.base import Citation, Rule, code

GRID_TEXT = re.compile(r"for\s+\w+\s+in\s+[\[(]\s*-?[\d.]")
CALIB_FN = re.compile(r"hessian|calib|gptq|quantiz|find_temp|temperature|temp_scal|fit_temp", re.I)

_GPTQ_DEF = '''import torch


def collect_hessians(model, tokens, n_batches, seq_len):
    hessians = {}
    for i in range(n_batches):
        x = tokens[i * seq_len:(i + 1) * seq_len]
        model(x)
    return hessians


'''
_VAL_CALL = _GPTQ_DEF + '''def main(model, val_tokens, train_loader):
    hessians = collect_hessians(model, val_tokens, 64, 2048)
    return hessians
'''
_VAL_TRACED = _GPTQ_DEF + '''def main(model, val_data, h):
    calib = val_data.val_tokens[: 64 * 2048]
    return collect_hessians(model, calib, 64, 2048)
'''
_VAL_INSIDE = '''import glob
import torch


def gptq_calibrate(model, h):
    files = sorted(glob.glob(h.val_files))
    tokens = torch.cat([torch.load(f) for f in files])
    hessians = {}
    for i in range(64):
        model(tokens[i * 2048:(i + 1) * 2048])
    return hessians
'''
_TEMP_GRID = '''def eval_val(model, tokens, temperature=1.0):
    return 0.0


def main(model, h):
    val_tokens = load_validation_tokens(h.val_files)
    best_t, best = 1.0, float("inf")
    for t in [0.90, 0.95, 1.00, 1.05]:
        loss = eval_val(model, val_tokens, temperature=t)
        if loss < best:
            best_t, best = t, loss
    return eval_val(model, val_tokens, temperature=best_t)
'''
_TRAIN_CALIB = _GPTQ_DEF + '''def main(model, train_loader):
    calib = train_loader.next_batch(64 * 2048)
    return collect_hessians(model, calib, 64, 2048)
'''
_SELF_GEN = _GPTQ_DEF + '''def generate_autoregressive_calib(model, n_seqs, seq_len, temperature=0.8):
    return torch.zeros(n_seqs * seq_len, dtype=torch.long)


def main(model, val_tokens):
    calib = generate_autoregressive_calib(model, 64, 2048)
    hessians = collect_hessians(model, calib, 64, 2048)
    score = sum(val_tokens.tolist())
    return hessians, score
'''
_TEMP_PARAM = '''def eval_val(model, tokens, temperature=1.0):
    return 0.0


def best_temperature(model, val_tokens):
    best_t, best = 1.0, float("inf")
    for t in [0.5, 0.85, 1.0, 1.3]:
        loss = eval_val(model, val_tokens, temperature=t)
        if loss < best:
            best_t, best = t, loss
    return best_t


def main(model, train_loader, h):
    calib_tokens = train_loader.stream.take(65536)
    t = best_temperature(model, calib_tokens)
    return eval_val(model, load_validation_tokens(h.val_files), temperature=t)
'''
_TEMP_TRAIN = '''def eval_val(model, tokens, temperature=1.0):
    return 0.0


def find_temp(model, calibration_tokens):
    best_t, best = 1.0, float("inf")
    for t in [0.90, 0.95, 1.00, 1.05, 1.10]:
        loss = eval_val(model, calibration_tokens, temperature=t)
        if loss < best:
            best_t, best = t, loss
    return best_t


def main(model, train_loader, val_tokens):
    calibration_tokens = train_loader.stream.take(65536)
    t = find_temp(model, calibration_tokens)
    return eval_val(model, val_tokens, temperature=t)
'''


class GptqCalibNoVal(Rule):
    ID = "GPTQ-CALIB-NO-VAL"
    TITLE = "Quantization calibration and fitted settings use no validation data"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("Record 2026-03-25 (PR #1019, merged) README, after PR #728's val-calibrated GPTQ was "
                        "replaced at a maintainer's request",
                        "No val data and no train data are accessed during quantization.", "MAINT")
    RATIONALE = ("GPTQ Hessians (X^T X of layer inputs) collected on validation tokens, or any setting "
                 "(a softmax temperature, a clip) chosen by a grid search that minimises loss on validation "
                 "tokens, fits the artifact to the test set before scoring it. Legal sources: training data "
                 "inside the training budget, or tokens the model generates itself. A temperature picked on "
                 "TRAIN tokens (the ternary record's find_temp) is fine.")
    LEGAL = [
        code(_TRAIN_CALIB, "Hessians from a training-data batch"),
        code(_SELF_GEN, "Hessians from autoregressively self-generated tokens; val only scored afterwards"),
        code(_TEMP_TRAIN, "temperature grid searched on 65,536 training tokens, then val scored once"),
        code(_TEMP_PARAM, "the search function's parameter is called val_tokens, but its caller passes train "
             "tokens"),
    ]
    ILLEGAL = [
        code(_VAL_CALL.replace("    hessians = collect_hessians(model, val_tokens, 64, 2048)",
                               "    if int(os.environ.get('VAL_CALIB', '0')):\n"
                               "        hessians = collect_hessians(model, val_tokens, 64, 2048)")
             .replace("import torch", "import os\nimport torch"), "val calibration behind a switch that is off: "
             "warning", 15, severity="warning"),
        code(_VAL_CALL, "val tokens passed straight to the Hessian collector", 13),
        code(_VAL_TRACED, "calibration batch sliced from val_data.val_tokens", 14),
        code(_VAL_INSIDE, "the calibration function loads the val shards itself", 6),
        code(_TEMP_GRID, "temperature grid search minimising val loss", 8),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        from harness.scan.config import node_state
        from harness.scan.patterns import call_name, is_val_word

        for unit in ctx.units:
            for fn in unit.functions:
                segment = unit.segment(fn)
                named = bool(CALIB_FN.search(fn.name))
                calls = bool(CALIB_FN.search(segment))
                grid = bool(GRID_TEXT.search(segment))
                if not (named or calls or grid):
                    continue
                nodes = unit.walk(fn)
                values = unit.values(fn)
                params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
                # (b) a calibration function that reads validation data itself
                if named:
                    for node in nodes:
                        word = None
                        if isinstance(node, ast.Attribute) and is_val_word(node.attr):
                            word = node.attr
                        elif isinstance(node, ast.Name) and is_val_word(node.id) and node.id not in params:
                            word = node.id
                        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                                and "fineweb_val" in node.value:
                            word = node.value
                        if word:
                            yield self.finding(
                                f"{fn.name}() is a quantization/calibration routine and reads validation data "
                                f"(`{word}`, line {node.lineno}); calibration must come from training data "
                                f"or self-generated tokens", unit.name, node.lineno,
                                evidence=unit.line_text(node.lineno))
                            break
                # (a) a calibration routine called with validation data
                if calls:
                    for node in nodes:
                        if not (isinstance(node, ast.Call) and CALIB_FN.search(call_name(node))):
                            continue
                        val = _val_argument(node, values, set())
                        if val:
                            msg = (f"{call_name(node)}() (quantization/calibration) is fed validation data "
                                   f"(`{val}`) at line {node.lineno}; Hessians and fitted settings must not see val")
                            state, why = node_state(ctx, unit, node)
                            if state == "off":
                                yield self.finding(f"{msg}; this branch is switched off ({why})", unit.name,
                                                   node.lineno, severity="warning",
                                                   evidence=unit.line_text(node.lineno))
                            else:
                                yield self.finding(msg + (f" (whether it runs is unclear: {why})"
                                                          if state == "unknown" else ""), unit.name, node.lineno,
                                                   confidence="low" if state == "unknown" else "high",
                                                   evidence=unit.line_text(node.lineno))
                # (c) a grid search over constants scored on val, keeping the best
                if not grid:
                    continue
                for loop in nodes:
                    if isinstance(loop, ast.For) and _constant_grid(loop.iter) and isinstance(loop.target, ast.Name):
                        hit = _val_scored_search(loop, values)
                        if hit is None:
                            continue
                        if hit in params:  # a parameter named like val: judge what the callers pass
                            callers = _callers_passing_val(unit, fn, hit)
                            if not callers:
                                continue
                            hit = f"{hit}, given {callers}"
                        yield self.finding(
                            f"line {loop.lineno} tries {len(loop.iter.elts)} values of `{loop.target.id}` "
                            f"and keeps the one with the best loss on validation data (`{hit}`): a setting "
                            f"fitted on val", unit.name, loop.lineno, evidence=unit.line_text(loop.lineno))


def _val_argument(call: ast.Call, values: dict, exclude: set[str]) -> str | None:
    from harness.scan.patterns import is_val_word, traced_words

    for arg in list(call.args) + [k.value for k in call.keywords]:
        words = traced_words(arg, values, 2)
        val = sorted(w for w in words if is_val_word(w) and "lut" not in w.lower() and w not in exclude)
        if val and not any("generat" in w.lower() or "self_gen" in w.lower() for w in words):
            return val[0]
    return None


def _callers_passing_val(unit, fn: ast.FunctionDef, param: str) -> str | None:
    """`name@line` of a call to `fn` that passes validation data for `param`, else None."""
    from harness.scan.patterns import call_name, is_val_word, traced_words

    names = [a.arg for a in fn.args.args]
    index = names.index(param) if param in names else None
    for other in unit.functions:
        if fn.name not in unit.segment(other):
            continue
        for node in unit.walk(other):
            if not (isinstance(node, ast.Call) and call_name(node) == fn.name):
                continue
            arg = next((k.value for k in node.keywords if k.arg == param), None)
            if arg is None and index is not None:
                offset = 1 if names and names[0] == "self" and isinstance(node.func, ast.Attribute) else 0
                if index - offset < len(node.args):
                    arg = node.args[index - offset]
            if arg is None:
                continue
            words = traced_words(arg, unit.values(other), 2)
            if any(is_val_word(w) and "lut" not in w.lower() for w in words) and \
                    not any("train" in w.lower() or "calib" in w.lower() for w in words):
                return f"{other.name}() line {node.lineno}"
    return None


def _constant_grid(node: ast.expr) -> bool:
    return isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) >= 2 and all(
        isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) for e in node.elts)


def _val_scored_search(loop: ast.For, values: dict) -> str | None:
    from harness.scan.patterns import is_val_word, traced_words

    var = loop.target.id  # type: ignore[union-attr]
    compares = any(isinstance(n, ast.Compare) and any(isinstance(o, (ast.Lt, ast.Gt, ast.LtE, ast.GtE))
                                                      for o in n.ops) for n in walk(loop))
    compares = compares or any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                               and n.func.id in ("min", "max") for n in walk(loop))
    if not compares:
        return None
    for call in walk(loop):
        if not isinstance(call, ast.Call):
            continue
        args = list(call.args) + [k.value for k in call.keywords]
        if not any(isinstance(a, ast.Name) and a.id == var for a in args):
            continue
        for a in args:
            words = traced_words(a, values, 2)
            val = sorted(w for w in words if is_val_word(w) and "lut" not in w.lower())
            if val:
                return val[0]
    return None
