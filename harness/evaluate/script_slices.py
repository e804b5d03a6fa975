"""What the adapter reads from a training script's syntax tree, and the rewrites it runs slices with.

Older records build and load their model inside `main()`; the adapter runs slices of its statements
(harness.evaluate.slicing). This module finds the statements that matter (the GPT model assignment, the
artifact read, the training loops, the eval-only settings applied after `deserialize()`), rewrites a slice's
`return` into a raise the adapter reports, and drops early exits and artifact writes. Nothing here runs
the submission's code except `apply_eval_settings`, which sets the attributes the script would set.
"""

from __future__ import annotations

import ast
from typing import Any

SLICE_RETURN = "__golfaudit_slice_return__"


class ReturnToRaise(ast.NodeTransformer):
    """`return ...` -> `raise __golfaudit_slice_return__(<line>)`, outside nested functions and classes."""

    def visit_Return(self, node: ast.Return) -> ast.stmt:
        call = ast.Call(func=ast.Name(SLICE_RETURN, ast.Load()), args=[ast.Constant(node.lineno)], keywords=[])
        return ast.copy_location(ast.Raise(exc=call, cause=None), node)

    def _skip(self, node: ast.AST) -> ast.AST:
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _skip


def function_returns(node: ast.AST) -> bool:
    """Whether `node` holds a `return` of the enclosing function (not one of a nested def or class)."""
    if isinstance(node, ast.Return):
        return True
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return False
    return any(function_returns(c) for c in ast.iter_child_nodes(node))


def always_returns(stmts: list[ast.stmt]) -> bool:
    """Whether running `stmts` always ends in a `return` (last statement, or an if/else whose both do)."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    return isinstance(last, ast.If) and always_returns(last.body) and always_returns(last.orelse)


def without_early_exits(body: list[ast.stmt]) -> list[ast.stmt]:
    """`body` with each `if` that has no `else` and whose branch always returns (an eval-only mode, `if not
    master_process: return`) as `pass`: a statement after it runs only when that branch did not, so
    slicing back from there never needs the branch (nor what the branch alone reads)."""
    out = []
    for st in body:
        if isinstance(st, ast.If) and not st.orelse and always_returns(st.body):
            st = ast.copy_location(ast.Pass(), st)
        out.append(st)
    return out


def load_body(body: list[ast.stmt]) -> list[ast.stmt]:
    """The function body the artifact-loading slice is taken from: early exits and the statements that
    write a `.ptz` file as `pass` (a write that names the artifact file would otherwise overwrite the
    artifact under test with the fresh model's weights)."""
    return [ast.copy_location(ast.Pass(), st) if writes_artifact(st, body) else st
            for st in without_early_exits(body)]


def exiting_branch(st: ast.stmt, wanted) -> list[ast.stmt] | None:
    """The branch of `if` statement `st` for which `wanted(branch)` holds and which returns from the
    function (e.g. `if args.eval_only: ...load...; return`), else None."""
    if not isinstance(st, ast.If):
        return None
    for branch in (st.body, st.orelse):
        if branch and wanted(branch) and any(function_returns(b) for b in branch):
            return branch
    return None


MODEL_CLASS_HINTS = ("GPT", "LM", "Transformer", "Model")


def gpt_call(node: ast.AST) -> bool:
    """A call of the model class: `GPT(...)` or a class named like one (`RecurrentGPT`, `HybridLM`)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
               and any(h in n.func.id for h in MODEL_CLASS_HINTS) and n.func.id[:1].isupper()
               for n in ast.walk(node))


def gpt_assignment(st: ast.stmt) -> str | None:
    if isinstance(st, (ast.Assign, ast.AnnAssign)) and gpt_call(st.value or ast.Pass()):
        tgt = st.targets[0] if isinstance(st, ast.Assign) else st.target
        if isinstance(tgt, ast.Name):
            return tgt.id
    return None


def assigns_gpt(st: ast.stmt, var: str) -> bool:
    return gpt_assignment(st) == var


def load_receiver(st: ast.stmt) -> str | None:
    for n in ast.walk(st):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "load_state_dict"
                and isinstance(n.func.value, ast.Name)):
            return n.func.value.id
    return None


def open_calls(node: ast.AST):
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open" and n.args:
            mode = n.args[1].value if len(n.args) > 1 and isinstance(n.args[1], ast.Constant) else "r"
            for kw in n.keywords:
                if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
                    mode = kw.value.value
            yield n.args[0], str(mode)


def const_str(arg: ast.expr, body: list[ast.stmt], pattern: bool = False, depth: int = 0) -> str | None:
    """A string constant, a name bound to one somewhere in `body` (minified `F='final_model.ptz'`), or an
    f-string made of those (`f"final_model.{quant_ext}"`). With `pattern`, an f-string part that is not a
    constant becomes `*` (`f"final_model.int{bits}.ptz"` -> `final_model.int*.ptz`)."""
    if depth > 8:
        return None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        parts = []
        for v in arg.values:
            part = const_str(v.value if isinstance(v, ast.FormattedValue) else v, body, pattern, depth + 1)
            if part is None:
                if not pattern or not isinstance(v, ast.FormattedValue):
                    return None
                part = "*"
            parts.append(part)
        return "".join(parts)
    if isinstance(arg, ast.Name):
        for st in body:
            for n in ast.walk(st):
                if (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                        and n.targets[0].id == arg.id and isinstance(n.value, (ast.Constant, ast.JoinedStr))):
                    return const_str(n.value, body, pattern, depth + 1)
    return None


def read_file_names(body: list[ast.stmt], upto: int) -> list[str]:
    """Names (or `*` patterns) of the files read up to statement `upto`."""
    names = []
    for st in body[:upto + 1]:
        for arg, mode in open_calls(st):
            name = const_str(arg, body, pattern=True)
            if "r" in mode and name:
                names.append(name)
    return sorted(set(names))


def writes_artifact(st: ast.stmt, body: list[ast.stmt]) -> bool:
    return any("w" in mode and (const_str(arg, body, pattern=True) or "").endswith(".ptz")
               for arg, mode in open_calls(st))


def is_training_loop(st: ast.stmt) -> bool:
    """A top-level loop that calls `.backward()` or an optimizer's `.step()`."""
    if not isinstance(st, (ast.For, ast.While)):
        return False
    for n in ast.walk(st):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("backward", "step"):
            return True
    return False


def without_training_loops(body: list[ast.stmt]) -> list[ast.stmt]:
    """`body` with its training loops as `pass`: the model handed to `serialize` is the trained one, so the
    artifact-writing slice must not pull in the loop (EMA/SWA state it sets keeps its pre-loop value)."""
    out = []
    for st in body:
        if is_training_loop(st):
            st = ast.copy_location(ast.Pass(), st)
        out.append(st)
    return out


def eval_settings_after_deserialize(tree: ast.Module) -> list[tuple[ast.expr | None, str, object]]:
    """`(condition, attribute, constant)` for each model setting the script's own code applies to the model
    that `deserialize()` returns before evaluating it — e.g. `if h.num_loops>0: eval_model.looping_active=True`
    (records from 2026-04-08 on train with layer loops switched on half-way and evaluate with them on)."""
    out: list[tuple[ast.expr | None, str, object]] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names: set[str] = set()
        for stmt in flat_statements(fn.body):
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) \
                    and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "deserialize":
                names |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
                continue
            if not names:
                continue
            cond, body = (stmt.test, stmt.body) if isinstance(stmt, ast.If) and not stmt.orelse else (None, [stmt])
            for inner in body:
                if isinstance(inner, ast.Assign) and len(inner.targets) == 1 \
                        and isinstance(inner.targets[0], ast.Attribute) \
                        and isinstance(inner.targets[0].value, ast.Name) and inner.targets[0].value.id in names \
                        and isinstance(inner.value, ast.Constant):
                    out.append((cond, inner.targets[0].attr, inner.value.value))
    return out


def flat_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements of a body in order, descending into with/try/for blocks (not into nested functions)."""
    out: list[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        if isinstance(stmt, (ast.With, ast.AsyncWith, ast.For, ast.While)):
            out += flat_statements(stmt.body)
        elif isinstance(stmt, ast.Try):
            out += flat_statements(stmt.body)
    return out


def apply_eval_settings(tree: ast.Module, model: Any, h: Any) -> list[str]:
    """Set on `model` what the script sets on its deserialized model before its own eval; returns what was
    set. A condition is evaluated with `h` (the submission's hyperparameters) only; one that needs anything
    else is skipped."""
    applied = []
    for cond, attr, value in eval_settings_after_deserialize(tree):
        if not hasattr(model, attr):
            continue
        if cond is not None:
            if any(isinstance(n, ast.Name) and n.id not in ("h", "args") for n in ast.walk(cond)) \
                    or any(isinstance(n, (ast.Call, ast.Lambda, ast.NamedExpr)) for n in ast.walk(cond)):
                continue  # only plain expressions over the hyperparameters are replayed
            try:
                ok = eval(compile(ast.Expression(cond), "<setting>", "eval"),  # noqa: S307 - h.* only
                          {"__builtins__": {}}, {"h": h, "args": h})
            except Exception:  # noqa: BLE001 - a condition on other state: not replayed
                continue
            if not ok:
                continue
        setattr(model, attr, value)
        applied.append(f"{attr}={value!r}")
    return applied


def h_attrs_opened(fn: ast.FunctionDef) -> list[str]:
    out = []
    for arg, mode in open_calls(fn):
        if "r" in mode and isinstance(arg, ast.Attribute):
            out.append(arg.attr)
    return out


def h_path_attrs(fn: ast.FunctionDef) -> list[str]:
    out = []
    for n in ast.walk(fn):
        if isinstance(n, ast.Attribute) and n.attr.endswith("_path") and n.attr not in out:
            out.append(n.attr)
    for arg, _mode in open_calls(fn):
        if isinstance(arg, ast.Attribute) and arg.attr not in out:
            out.append(arg.attr)
    return out


def compiles_forward_logits(tree: ast.AST) -> bool:
    """Whether the script calls `torch.compile(<...>.forward_logits, ...)` anywhere."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "compile"
                and node.args and isinstance(node.args[0], ast.Attribute)
                and node.args[0].attr == "forward_logits"):
            return True
    return False
