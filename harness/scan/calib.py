"""Where validation data becomes a fitted value: the calibration sinks the trace (harness.scan.trace) checks.

Validation data is the trace's `<VAL>` flow (read from the val shards, followed through assignments, calls
and returns), never a variable's name. A value computed from it is *calibration* when it reaches:

- **hooked forward passes**: a forward pass on val data while a function on the call stack has registered
  hooks that collect what flows through the modules (`module.register_forward_hook(hook)` whose hook reads
  its input or output into a container and returns nothing), when what they collect reaches a quantizer call
  afterwards (GPTQ Hessians X^T X, AWQ scales, clip ranges; rules/gptq_calib_no_val.py checks the reach);
- **a library quantizer**: a call the folder does not define whose name says it quantizes or calibrates
  (`quantize_(model, calib_data=val)`), given val data;
- **a grid search**: a loop over a literal list of settings (`for t in [0.9, 1.0, 1.1]`) that scores val data
  with each one and keeps the best (a temperature or clip value fitted on val, then used to score).

Scoring a model on val (an eval of the already-quantized artifact) reaches none of these: the losses go
to logs, not into the artifact or the settings it is scored with.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from harness.astwalk import walk
from harness.nodememo import NodeMemo
from harness.scan.assigns import scope_walk

# a call the folder does not define, that quantizes or calibrates what it is given
QUANTIZER_CALL = re.compile(r"quantiz|quantis|gptq|awq|hessian|calibrat", re.I)
HOOK_CALLS = {"register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
              "register_backward_hook", "register_full_backward_pre_hook"}
# roots of library calls that are not a model's forward pass
LIBRARY_ROOTS = {"torch", "F", "nn", "np", "numpy", "math", "dist", "os", "time", "json", "lzma", "zlib", "io",
                 "random", "functools", "itertools", "sys", "re", "glob", "Path", "pickle", "struct", "brotli",
                 "zstd", "zstandard", "sentencepiece", "spm", "triton", "tl", "collections", "copy", "logging",
                 "warnings", "contextlib", "subprocess", "shutil", "datetime", "base64", "hashlib", "operator",
                 "statistics", "bisect", "heapq", "string", "textwrap", "inspect", "types", "typing"}
BUILTINS = {"len", "range", "int", "float", "list", "tuple", "dict", "set", "zip", "enumerate", "min", "max",
            "sum", "print", "isinstance", "sorted", "reversed", "iter", "next", "abs", "round", "str", "bool",
            "getattr", "setattr", "hasattr", "any", "all", "map", "filter", "open", "repr", "type", "id", "divmod",
            "pow", "format", "vars", "super", "callable", "hash", "slice", "frozenset", "bytes", "bytearray",
            "memoryview", "object", "ord", "chr", "hex", "bin", "oct"}


_HOOK_SPAN: NodeMemo[tuple] = NodeMemo("calib.hook_span")


def hook_span(func_node: ast.AST, named: Callable[[str], ast.AST | None] | None = None) -> tuple | None:
    """For a function that registers hooks collecting into containers of its own: (line of the first such
    registration, line of the first `.remove()` after it or a very large number, the names the hooks store
    into, the calls of helpers that may register more: `self._register_hooks()`), None when it registers
    none and calls no such helper; kept with the node. The trace resolves the helpers (harness.scan.trace).
    `named` finds a hook installed by name that `func_node` does not define (a module-level function)."""
    return _HOOK_SPAN(func_node, lambda node: _hook_span(node, named)) or None


def _hook_span(func_node: ast.AST, named: Callable[[str], ast.AST | None] | None = None) -> tuple:
    if isinstance(func_node, ast.Module):
        return ()
    calls = [(n, _called(n)) for n in scope_walk(func_node) if isinstance(n, ast.Call)]
    hooked = [(n, name) for n, name in calls if "hook" in name.lower()]
    if not hooked:
        return ()
    # a registration of its own whose hook reads what flows through the module and stores it in a container
    # outside the hook (not an adapter that rewrites the output, nor a patch that ignores it)
    stores: set[str] = set()
    lines: list[int] = []
    for n, name in hooked:
        if name in HOOK_CALLS and _collects(hook := _hook_def(n, func_node, named)):
            written = _free_stores(hook) if hook is not None else set()
            if written or hook is None:
                lines.append(n.lineno)
                stores |= written
    helpers = tuple(n for n, name in hooked if name not in HOOK_CALLS and _HOOK_HELPER.search(name))
    start = min([*lines, *(h.lineno for h in helpers)], default=None)
    if start is None:
        return ()
    end = min((n.lineno for n, name in calls if n.lineno > start and (name == "remove" or _UNHOOK_HELPER.search(name))),
              default=1 << 30)
    return (min(lines, default=1 << 30), end, frozenset(stores), helpers)


def _hook_def(register: ast.Call, func_node: ast.AST,
              named: Callable[[str], ast.AST | None] | None = None) -> ast.AST | None:
    """The function or lambda a registration installs, when it is defined in `func_node` (directly, or as the
    nested function of a factory defined there), or found by `named` (a function defined elsewhere)."""
    if not register.args:
        return None
    hook = register.args[0]
    if isinstance(hook, ast.Lambda):
        return hook
    defs = {n.name: n for n in walk(func_node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if isinstance(hook, ast.Name):
        return defs.get(hook.id) or (named(hook.id) if named else None)
    if isinstance(hook, ast.Call) and isinstance(hook.func, ast.Name) and hook.func.id in defs:
        return next((n for n in scope_walk(defs[hook.func.id]) if isinstance(n, (ast.FunctionDef,
                                                                                 ast.AsyncFunctionDef))), None)
    return None


def _free_stores(hook: ast.AST) -> set[str]:
    """Names a hook writes into that it does not bind itself: `hessians[name] += x.T @ x`,
    `stats.append(...)`, `self.acts[n] = ...` (its containers, owned by the function around it)."""
    args = hook.args
    own = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    out: set[str] = set()
    for n in walk(hook):
        if isinstance(n, (ast.Assign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    own.add(t.id)
                elif isinstance(t, (ast.Subscript, ast.Attribute)):
                    base = _base(t)
                    if base:
                        out.add(base)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _COLLECT_CALLS:
            base = _base(n.func.value)
            if base:
                out.add(base)
    return out - own


def _base(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _collects(hook: ast.AST | None) -> bool:
    """A hook (harness.scan.calib._hook_def) collects what flows through its module: it reads its input or
    output argument and returns nothing (a hook that returns a value replaces the module's output or input, as
    an adapter does; one that ignores both, as a fake-quantization pre-hook does, collects nothing). A hook
    that cannot be read counts as a collector."""
    if hook is None:
        return True
    data = {a.arg for a in [*hook.args.posonlyargs, *hook.args.args][1:3]}
    if isinstance(hook, ast.Lambda):
        body = hook.body
        return isinstance(body, ast.Call) and _called(body) in _COLLECT_CALLS and _reads(body, data)
    body = scope_walk(hook)
    returns = any(isinstance(n, ast.Return) and n.value is not None
                  and not (isinstance(n.value, ast.Constant) and n.value.value is None) for n in body)
    return not returns and any(isinstance(n, ast.Name) and n.id in data for n in body)


def _reads(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in walk(node))


_COLLECT_CALLS = {"update", "append", "extend", "add_", "addmm_", "copy_", "setdefault", "__setitem__", "put"}
# a user helper that installs several hooks (`self._register_hooks()`), not torch's own `register_hook` on a tensor
# or `register_comm_hook` on DDP
_HOOK_HELPER = re.compile(r"(register|add|install|attach)\w*hooks\b", re.I)
_UNHOOK_HELPER = re.compile(r"remove\w*hook|clear\w*hook|detach\w*hook", re.I)


def _called(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def forward_like(call: ast.Call, tainted) -> bool:
    """A call that may run a model on its arguments: a called name that is no builtin (`model(x)`), or a
    method of something that is neither the data itself nor a library module (`net.forward_logits(x)`,
    `self.blocks[i](x)`). `tainted(expr)` says whether an expression carries val data."""
    f = call.func
    if isinstance(f, ast.Name):
        return f.id not in BUILTINS
    root = _root(f)
    if isinstance(root, ast.Name) and root.id in LIBRARY_ROOTS:
        return False
    if isinstance(f, ast.Attribute) and tainted(f.value):
        return False                      # `x.to(device)`, `seq[:, :-1].reshape(...)`: the data, not a model
    return True


def constant_grid(node: ast.expr) -> bool:
    """A literal list or tuple of two or more numbers."""
    return isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) >= 2 and all(
        isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool)
        for e in node.elts)


def grid_search(loop: ast.For, tainted) -> ast.expr | None:
    """For `for t in [0.9, 1.0, ...]:`, the val-carrying argument of a call in the loop body that also takes
    `t`, when the loop keeps a best value (a comparison, or min/max); None otherwise."""
    if not (constant_grid(loop.iter) and isinstance(loop.target, ast.Name)):
        return None
    var = loop.target.id
    nodes = [n for stmt in loop.body for n in walk(stmt)]
    keeps_best = any(isinstance(n, ast.Compare) and any(isinstance(o, (ast.Lt, ast.Gt, ast.LtE, ast.GtE))
                                                        for o in n.ops) for n in nodes) or \
        any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("min", "max")
            for n in nodes)
    if not keeps_best:
        return None
    for call in nodes:
        if not isinstance(call, ast.Call):
            continue
        args = [*call.args, *(k.value for k in call.keywords)]
        if not any(isinstance(a, ast.Name) and a.id == var for a in args):
            continue
        for a in args:
            if not (isinstance(a, ast.Name) and a.id == var) and tainted(a):
                return a
    return None


__all__ = ["QUANTIZER_CALL", "constant_grid", "forward_like", "grid_search", "hook_span"]
