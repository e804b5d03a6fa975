"""The scanner's vocabulary: what names, words and small `ast` shapes mean in a training script.

Name and expression helpers (`dotted`, `call_name`, `names_in`, the parents of a node and the `if`s that guard
it) and the words of the evaluation path (`is_eval_function`, `is_val_word`, `TRAIN_DATA_WORD`, the words an
expression is traced back to). The detectors built on them are in harness.scan.patterns.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from typing import Any

from harness.astwalk import walk
from harness.codeload import CodeUnit


# -- names and expressions ----------------------------------------------------------------------
def dotted(node: ast.AST) -> str:
    """`a.b.c` for Name/Attribute chains (calls and subscripts shown as `()` / `[]`), else ''."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        elif isinstance(node, ast.Call):
            parts.append("()")
            node = node.func
        elif isinstance(node, ast.Subscript):
            parts.append("[]")
            node = node.value
        else:
            return ""
    return ".".join(reversed(parts)).replace(".()", "()").replace(".[]", "[]")


def call_name(node: ast.Call) -> str:
    """Last component of a call's function: `torch.optim.SGD(...)` → 'SGD'."""
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def names_in(node: ast.AST) -> set[str]:
    """Every Name id and Attribute attr mentioned under `node`."""
    out: set[str] = set()
    for n in walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def str_constants(node: ast.AST) -> Iterator[tuple[str, int]]:
    for n in walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.value, getattr(n, "lineno", 0)


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for n in walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield n


def loops(node: ast.AST) -> Iterator[ast.For | ast.While | ast.AsyncFor]:
    for n in walk(node):
        if isinstance(n, (ast.For, ast.While, ast.AsyncFor)):
            yield n


def defined_functions(units: Iterable[CodeUnit]) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    out: dict[str, Any] = {}
    for u in units:
        for f in functions(u.tree):
            out.setdefault(f.name, f)
    return out


def calls_to(tree: ast.AST, name: str) -> Iterator[ast.Call]:
    for n in walk(tree):
        if isinstance(n, ast.Call) and call_name(n) == name:
            yield n


def mentions_function(tree: ast.AST, name: str) -> Iterator[ast.AST]:
    """Calls of `name` and bare references to it (e.g. `timed_eval('x', eval_fn, ...)`)."""
    for n in walk(tree):
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load):
            yield n
        elif isinstance(n, ast.Attribute) and n.attr == name:
            yield n


def snippet(text: str, line: int | None, width: int = 200) -> str:
    if not line:
        return ""
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1].strip()[:width]
    return ""


def enclosing_map(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    """child → parent for every node of `tree`."""
    parents: dict[ast.AST, ast.AST] = {}
    for parent in walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    return parents


def guarding_ifs(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[ast.expr]:
    """Tests of the `if` statements whose body (not else) holds `node`, innermost first."""
    out: list[ast.expr] = []
    child = node
    parent = parents.get(child)
    while parent is not None:
        if isinstance(parent, ast.If) and child in parent.body:
            out.append(parent.test)
        elif isinstance(parent, ast.IfExp) and child is parent.body:
            out.append(parent.test)
        elif isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            break
        child, parent = parent, parents.get(parent)
    return out


def enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.FunctionDef | None:
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return parent  # type: ignore[return-value]
        parent = parents.get(parent)
    return None


# -- vocabulary of the eval path ------------------------------------------------------------------
EVAL_FN = re.compile(r"eval|ttt|sliding|score|rescore|infer", re.I)
NOT_EVAL_FN = re.compile(r"train_and|train_model|hessian|calib|gptq|quantiz", re.I)
VAL_WORD = re.compile(r"(?:^|_)val(?:_|$|id)|^val|fineweb_val|validation", re.I)
NOT_VAL_WORD = re.compile(r"value|interval|eval|_vals?$|^vals?$|retrieval|oval", re.I)
TRAIN_DATA_WORD = re.compile(r"fineweb_train|train_files|train_pattern|train_loader|train_tokens|train_stream"
                             r"|train_shard|train_data", re.I)


def is_eval_function(name: str) -> bool:
    """A function that runs at evaluation time, judged by its name (eval_val*, *ttt*, *sliding*, score*)."""
    return bool(EVAL_FN.search(name)) and not NOT_EVAL_FN.search(name)


def is_val_word(word: str) -> bool:
    return bool(VAL_WORD.search(word)) and not (NOT_VAL_WORD.search(word) and not word.lower().startswith("val_"))


def words_of(expr: ast.AST) -> Iterator[str]:
    """Names, attribute names and string constants under `expr`."""
    for n in walk(expr):
        if isinstance(n, ast.Name):
            yield n.id
        elif isinstance(n, ast.Attribute):
            yield n.attr
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 200:
            yield n.value


def traced_words(expr: ast.AST, values: dict[str, list[ast.expr]], depth: int = 3) -> set[str]:
    """Words of `expr` and, through local assignments, of what its names were assigned from."""
    seen: set[str] = set()
    out: set[str] = set()
    frontier = [expr]
    for _ in range(depth + 1):
        nxt: list[ast.AST] = []
        for e in frontier:
            for w in words_of(e):
                out.add(w)
                if w in values and w not in seen:
                    seen.add(w)
                    nxt.extend(values[w])
        frontier = nxt
        if not frontier:
            break
    return out
