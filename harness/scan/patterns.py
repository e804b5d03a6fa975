"""Small `ast` helpers shared by the static pattern rules (config, SLOT, ETLB, n-gram, BPB, eval-path).

`code_units(sub)` is the one place code is obtained: harness.codeload's bundle when it exists (packed
scripts unpacked), else the training scripts parsed directly. Everything else here is pure `ast`.
"""

from __future__ import annotations

import ast
import re
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Unit:
    """One parsed Python source: the name findings should cite, its text and its tree."""

    name: str
    text: str
    tree: ast.Module

    @cached_property
    def nodes(self) -> list[ast.AST]:
        """Every node of the tree, walked once and shared by all rules."""
        return list(ast.walk(self.tree))

    @cached_property
    def parents(self) -> dict[ast.AST, ast.AST]:
        out: dict[ast.AST, ast.AST] = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                out[child] = node
        return out

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line_text(self, line: int | None, width: int = 200) -> str:
        if line and 1 <= line <= len(self.lines):
            return self.lines[line - 1].strip()[:width]
        return ""


_UNITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def code_units(sub: Any) -> list[Unit]:
    """Parsed code of a submission (cached per Submission object). Unparseable files are skipped:
    RECORDS-FOLDER and the code loader report those."""
    try:
        return _UNITS[sub]
    except (KeyError, TypeError):
        pass
    units = _load_units(sub)
    try:
        _UNITS[sub] = units
    except TypeError:
        pass
    return units


def _load_units(sub: Any) -> list[Unit]:
    try:
        from harness.codeload import load_code  # helper B's loader (unpacks packed scripts)
    except ImportError:
        load_code = None
    if load_code is not None:
        try:
            bundle = load_code(sub)
            out = []
            for u in bundle.units:
                tree = getattr(u, "tree", None)
                if isinstance(tree, ast.Module):
                    out.append(Unit(str(u.name), str(getattr(u, "text", "")), tree))
            return out
        except Exception:  # noqa: BLE001 - fall back to the plain parse below
            pass
    from harness.parse import ParseFailure, parse_source
    from harness.submission import LoadError

    out = []
    names = list(sub.script_names)
    if not getattr(sub, "single_file", True):
        names += sorted(n for n in sub.files if n.endswith(".py") and n not in names)
    for name in names:
        try:
            text = sub.read_source(name)
            out.append(Unit(name, text, parse_source(text, name).tree))
        except (LoadError, ParseFailure, OSError):
            continue
    return out


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
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def str_constants(node: ast.AST) -> Iterator[tuple[str, int]]:
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.value, getattr(n, "lineno", 0)


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield n


def loops(node: ast.AST) -> Iterator[ast.For | ast.While | ast.AsyncFor]:
    for n in ast.walk(node):
        if isinstance(n, (ast.For, ast.While, ast.AsyncFor)):
            yield n


def defined_functions(units: Iterable[Unit]) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    out: dict[str, Any] = {}
    for u in units:
        for f in functions(u.tree):
            out.setdefault(f.name, f)
    return out


def calls_to(tree: ast.AST, name: str) -> Iterator[ast.Call]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and call_name(n) == name:
            yield n


def mentions_function(tree: ast.AST, name: str) -> Iterator[ast.AST]:
    """Calls of `name` and bare references to it (e.g. `timed_eval('x', eval_fn, ...)`)."""
    for n in ast.walk(tree):
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
    for parent in ast.walk(tree):
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


def local_values(fn: ast.AST) -> dict[str, list[ast.expr]]:
    """name → every expression assigned to it inside `fn` (plain, annotated, augmented, for-targets)."""
    out: dict[str, list[ast.expr]] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out.setdefault(n.id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None \
                and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, (ast.For, ast.comprehension)):
            for n in ast.walk(node.target):
                if isinstance(n, ast.Name):
                    out.setdefault(n.id, []).append(node.iter)
        elif isinstance(node, ast.NamedExpr):
            out.setdefault(node.target.id, []).append(node.value)
    return out


def words_of(expr: ast.AST) -> Iterator[str]:
    """Names, attribute names and string constants under `expr`."""
    for n in ast.walk(expr):
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
