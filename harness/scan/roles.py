"""Parameters that hold validation tokens by their role, where no data flow from the val shards reaches them.

The TTT trace (harness.scan.trace) follows validation data from where it is loaded. Library-style code (the
caller lives elsewhere) or a loader the model does not know leaves a function's token parameter unbound;
such a function is traced once more with the parameter taken as validation data when its role says so:

- its name says so (`val_tokens`, `valid_ids`: `VAL_PARAM`);
- it is a token parameter (`tokens`, `doc_tokens`, `input_ids`, ...) of an evaluation function by name
  (`eval_val*`, `*ttt*`, `*sliding*`, `score*`: patterns.is_eval_function);
- some call passes it a slice or element of validation tokens, whatever the parameter is called: a slice of
  a val-named value (`val_tokens[s:e]`, `self.val_tokens[...]`) or of a parameter that holds validation
  tokens by role (`tokens[start:start + n]` in `eval_val_lora_ttt(model, tokens, ...)`), directly or
  through a local (`doc_tokens = tokens[s:e]`; `helper(doc_tokens)`).

A parameter that some call in the folder binds to training data (`fineweb_train_*`, `train_tokens`) holds
no validation tokens by role.
"""

from __future__ import annotations

import ast
import re

from harness.astwalk import local_values, walk
from harness.scan.assigns import scope_walk
from harness.scan.model import Func, Program
from harness.scan.vocabulary import TRAIN_DATA_WORD, is_eval_function, is_val_word, traced_words

VAL_PARAM = re.compile(r"^(val|valid|validation|heldout|held_out)_?(tokens?|toks|ids|data|dataset|set|seqs?|"
                       r"stream|inputs?|batch(es)?)$", re.I)
TOKEN_PARAM = re.compile(r"^(?:[a-z]+_)?(?:tokens?|toks|token_ids|ids|input_ids|seqs?|stream)$", re.I)
_VIEWS = {"to", "long", "int", "cuda", "contiguous", "clone", "view", "reshape", "flatten", "unsqueeze", "squeeze",
          "tolist", "numpy", "astype"}


def role_params(program: Program) -> dict[int, tuple[Func, dict[str, str]]]:
    """id(function) -> (function, {parameter: why it holds validation tokens}), for top-level functions and
    methods."""
    out: dict[int, tuple[Func, dict[str, str]]] = {}
    funcs = [f for f in program.all_funcs() if isinstance(f.node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for f in funcs:
        for p in f.params:
            if VAL_PARAM.match(p):
                out.setdefault(id(f), (f, {}))[1][p] = "by its name"
            elif TOKEN_PARAM.match(p) and is_eval_function(f.name):
                out.setdefault(id(f), (f, {}))[1][p] = f"as the token input of the evaluation function {f.name}()"
    for caller in funcs:  # a parameter some call binds to training data holds no validation tokens
        for _call, callee, param, arg in _bindings(program, caller):
            held = out.get(id(callee))
            if held and param in held[1] and _train_data(arg, caller):
                del held[1][param]
    for _ in range(2):  # a helper of a helper
        grew = False
        for caller in funcs:
            mine = set(out.get(id(caller), (None, {}))[1])
            for call, callee, param, arg in _bindings(program, caller):
                if param in out.get(id(callee), (None, {}))[1]:
                    continue
                src = _val_slice(arg, caller, mine)
                if src:
                    out.setdefault(id(callee), (callee, {}))[1][param] = \
                        f"because {caller.name}() passes it `{src}` at line {call.lineno}"
                    grew = True
        if not grew:
            break
    return {k: v for k, v in out.items() if v[1]}


def _bindings(program: Program, caller: Func):
    """(call, callee, parameter, argument) for the calls in `caller`'s own scope that resolve to a user
    function."""
    cached = caller.__dict__.get("role_bindings")
    if cached is not None:
        return cached
    found = []
    for call in scope_walk(caller.node):
        if not isinstance(call, ast.Call):
            continue
        callee = program.resolve(call, caller)
        if callee is None or not isinstance(callee.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        params = [p for p in callee.params if not p.startswith("*")]
        if isinstance(call.func, ast.Attribute) and callee.cls is not None and params and params[0] in ("self", "cls"):
            params = params[1:]
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred) or i >= len(params):
                break
            found.append((call, callee, params[i], arg))
        for kw in call.keywords:
            if kw.arg in params:
                found.append((call, callee, kw.arg, kw.value))
    caller.__dict__["role_bindings"] = found
    return found


def _val_slice(arg: ast.expr, caller: Func, roles: set[str]) -> str:
    """The text of the val slice `arg` is (or its local is assigned from), else ''."""
    for expr in [arg, *_assigned(arg, caller)]:
        node = expr
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _VIEWS:
            node = node.func.value
        if not isinstance(node, ast.Subscript):
            continue
        base = node.value
        while isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name) and base.id in roles:
            return ast.unparse(node)
        if isinstance(base, ast.Name) and base.id in caller.params:
            continue                            # a parameter holds val tokens only by its own role
        words = [n.attr for n in walk(base) if isinstance(n, ast.Attribute)] + \
                [n.id for n in walk(base) if isinstance(n, ast.Name)]
        if any(is_val_word(w) and "lut" not in w.lower() for w in words):
            return ast.unparse(node)
    return ""


def _train_data(arg: ast.expr, caller: Func) -> bool:
    words = set(traced_words(arg, local_values(caller.node), 2))
    return any(TRAIN_DATA_WORD.search(w) for w in words)


def _assigned(arg: ast.expr, caller: Func) -> list[ast.expr]:
    if not isinstance(arg, ast.Name):
        return []
    table = caller.__dict__.get("role_assigns")
    if table is None:
        table = caller.__dict__["role_assigns"] = _assignments(caller.node)
    return table.get(arg.id, [])[:4]


def _assignments(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """name -> values bound to it by `name = v` in the scope; a `for name in xs` binds an element of xs."""
    out: dict[str, list[ast.expr]] = {}
    for n in scope_walk(scope):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    out.setdefault(t.id, []).append(n.value)
        elif isinstance(n, (ast.For, ast.AsyncFor)) and isinstance(n.target, ast.Name):
            out.setdefault(n.target.id, []).append(ast.Subscript(n.iter, ast.Name("_", ast.Load()), ast.Load()))
    return out


__all__ = ["TOKEN_PARAM", "VAL_PARAM", "role_params"]
