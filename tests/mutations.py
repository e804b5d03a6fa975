"""Semantics-preserving rewrites of a training script (libcst), for testing that the scanner judges the
program, not its spelling: the verdict and deciding lines must survive every mutation.

- `rename_identifiers`: every identifier the script defines (functions, classes, parameters, variables,
  attributes it assigns or defines) consistently renamed; imports, builtins and library attributes kept.
  libcst keeps the layout, so line numbers are unchanged.
- `reorder_functions`: module-level function definitions in reverse order.
- `inline_helper`: one function called exactly once as a statement (`f(...)` or `x = f(...)`) replaced by
  its body, parameters bound by assignments, its locals suffixed to avoid capture.
- `for_to_while`: every `for T in X:` (without `else`) rewritten as `it = iter(X)` + `while True:` with
  `T = next(it)` under `try/except StopIteration: break`.
"""

from __future__ import annotations

import builtins
import re

import libcst as cst

KEEP = set(dir(builtins)) | {"self", "cls", "__name__", "__main__", "__file__", "forward", "__init__",
                             "__call__", "_", "super"}


def _code(node: cst.CSTNode) -> str:
    """Source text of one node."""
    return cst.Module([]).code_for_node(node)


class _Collect(cst.CSTVisitor):
    """Names the script defines (candidates for renaming) and names it imports (never renamed)."""

    def __init__(self) -> None:
        self.defined: set[str] = set()
        self.imported: set[str] = set()
        self.attrs: set[str] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.defined.add(node.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.defined.add(node.name.value)
        for stmt in node.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, (cst.Assign, cst.AnnAssign)):
                        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) \
                            else [small.target]
                        for t in targets:
                            if isinstance(t, cst.Name):
                                self.attrs.add(t.value)
            elif isinstance(stmt, cst.FunctionDef):
                self.attrs.add(stmt.name.value)

    def visit_Param(self, node: cst.Param) -> None:
        self.defined.add(node.name.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._targets(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._targets(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._targets(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._targets(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        if isinstance(node.name, cst.Name):
            self.defined.add(node.name.value)

    def visit_Import(self, node: cst.Import) -> None:
        for a in node.names:
            name = a.asname.name.value if a.asname else cst.helpers.get_full_name_for_node(a.name).split(".")[0]
            self.imported.add(name)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        for a in node.names:
            self.imported.add(a.asname.name.value if a.asname else a.name.value)

    def _targets(self, t: cst.BaseExpression) -> None:
        if isinstance(t, cst.Name):
            self.defined.add(t.value)
        elif isinstance(t, (cst.Tuple, cst.List)):
            for e in t.elements:
                self._targets(e.value)
        elif isinstance(t, cst.StarredElement):
            self._targets(t.value)
        elif isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == "self":
            self.attrs.add(t.attr.value)


class _Rename(cst.CSTTransformer):
    def __init__(self, names: dict[str, str], attrs: dict[str, str]):
        self.names, self.attrs = names, attrs

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.names.get(updated.value, updated.value))

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        # the attr Name was renamed by leave_Name when it is also a variable name; use the attr map
        attr = original.attr.value
        return updated.with_changes(attr=cst.Name(self.attrs.get(attr, attr)))

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        if original.keyword is not None:
            kw = original.keyword.value
            return updated.with_changes(keyword=cst.Name(self.names.get(kw, kw)))
        return updated

    def leave_ImportAlias(self, original: cst.ImportAlias, updated: cst.ImportAlias) -> cst.ImportAlias:
        return original

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        return original


def rename_identifiers(source: str, prefix: str = "q") -> str:
    """Consistently rename every identifier the script defines (see module docstring)."""
    module = cst.parse_module(source)
    col = _Collect()
    module.visit(col)
    keep = KEEP | col.imported
    names = {n: f"{prefix}{i}" for i, n in enumerate(sorted(col.defined - keep)) if not n.startswith("__")}
    attrs = {a: names.get(a, f"{prefix}a{i}") for i, a in enumerate(sorted(col.attrs - keep))
             if not a.startswith("__")}
    # a defined name used as an attribute elsewhere keeps one spelling everywhere
    for a, new in attrs.items():
        if a in col.defined:
            names.setdefault(a, new)
    return module.visit(_Rename(names, attrs)).code


def reorder_functions(source: str) -> str:
    """Module-level function definitions in reverse order (other statements stay where they are)."""
    module = cst.parse_module(source)
    body = list(module.body)
    slots = [i for i, s in enumerate(body) if isinstance(s, cst.FunctionDef)]
    funcs = [body[i] for i in slots]
    for i, f in zip(slots, reversed(funcs)):
        body[i] = f
    return module.with_changes(body=body).code


class _ForToWhile(cst.CSTTransformer):
    def __init__(self) -> None:
        self.n = 0

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated.with_changes(body=self._expand(updated.body))

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self._expand(updated.body))

    def _expand(self, body) -> list:
        out = []
        for stmt in body:
            if isinstance(stmt, cst.For) and stmt.orelse is None and stmt.asynchronous is None:
                self.n += 1
                it = f"_ga_it{self.n}"
                target = _code(stmt.target)
                it_code = _code(stmt.iter)
                head = cst.parse_statement(f"{it} = iter({it_code})\n")
                loop = cst.parse_statement(
                    f"while True:\n    try:\n        {target} = next({it})\n    except StopIteration:\n"
                    f"        break\n    pass\n")
                inner = list(loop.body.body[:-1]) + list(stmt.body.body)
                out.append(head)
                out.append(loop.with_changes(body=loop.body.with_changes(body=inner)))
            else:
                out.append(stmt)
        return out


def for_to_while(source: str) -> str:
    """Every plain `for` loop as an equivalent `while True` loop over an explicit iterator."""
    return cst.parse_module(source).visit(_ForToWhile()).code


class _Suffix(cst.CSTTransformer):
    def __init__(self, names: set[str], suffix: str):
        self.names, self.suffix = names, suffix

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if updated.value in self.names:
            return updated.with_changes(value=updated.value + self.suffix)
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def _call_sites(module: cst.Module, name: str) -> int:
    """How often a name occurs in the module's text (definition + uses)."""
    return len(re.findall(rf"\b{re.escape(name)}\b", module.code))


def inline_helper(source: str, name: str | None = None) -> str:
    """Inline one module-level helper called exactly once as a statement. Raises ValueError if none fits."""
    module = cst.parse_module(source)
    funcs = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}

    def fits(f: cst.FunctionDef) -> bool:
        code = _code(f)
        if f.asynchronous or f.decorators or "yield" in code or "nonlocal" in code or "global " in code:
            return False
        params = f.params
        if params.star_arg not in (None, cst.MaybeSentinel.DEFAULT) or params.star_kwarg or params.kwonly_params:
            return False
        if params.posonly_params:
            return False
        returns = code.count("return")
        last = f.body.body[-1]
        last_return = isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], cst.Return)
        return returns == 0 or (returns == 1 and last_return)

    order = [name] if name else sorted(funcs, key=lambda n: ("backward" not in _code(funcs[n]), n))
    for fname in order:
        f = funcs.get(fname)
        if f is None or fname == "main" or not fits(f) or _call_sites(module, fname) != 2:
            continue
        inliner = _InlineCalls(f)
        new = module.visit(inliner)
        if inliner.done:
            body = [s for s in new.body if not (isinstance(s, cst.FunctionDef) and s.name.value == fname)]
            return new.with_changes(body=body).code
    raise ValueError("no helper to inline")


class _InlineCalls(cst.CSTTransformer):
    """Replaces the first statement calling `func` by its body; `done` tells whether one was found."""

    def __init__(self, func: cst.FunctionDef):
        self.func = func
        self.done = False

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        if self.done:
            return updated
        body = []
        for stmt in updated.body:
            expanded = self._expand(stmt)
            body.extend(expanded if expanded is not None else [stmt])
        return updated.with_changes(body=body)

    def _expand(self, stmt) -> list | None:
        if self.done or not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return None
        small = stmt.body[0]
        target = None
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            call = small.value
        elif isinstance(small, cst.Assign) and isinstance(small.value, cst.Call) and len(small.targets) == 1:
            call, target = small.value, small.targets[0].target
        else:
            return None
        f = self.func
        if not (isinstance(call.func, cst.Name) and call.func.value == f.name.value):
            return None
        params = [p.name.value for p in f.params.params]
        col = _Collect()
        f.body.visit(col)
        local = (col.defined | set(params)) - KEEP
        suffix = "_inl"
        renamed = f.body.visit(_Suffix(local, suffix))
        binds = []
        given: dict[str, cst.BaseExpression] = {}
        for i, a in enumerate(call.args):
            if a.star:
                return None
            key = a.keyword.value if a.keyword is not None else (params[i] if i < len(params) else None)
            if key is None:
                return None
            given[key] = a.value
        for p in f.params.params:
            value = given.get(p.name.value, p.default)
            if value is None:
                return None
            code = _code(value)
            binds.append(cst.parse_statement(f"{p.name.value}{suffix} = {code}\n"))
        inner = list(renamed.body)
        last = inner[-1]
        if isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], cst.Return):
            ret = last.body[-1]
            inner = inner[:-1]
            if target is not None and ret.value is not None:
                code = _code(ret.value)
                tcode = _code(target)
                inner.append(cst.parse_statement(f"{tcode} = {code}\n"))
        elif target is not None:
            return None
        self.done = True
        return binds + inner + ([cst.parse_statement("pass\n")] if not inner and not binds else [])


MUTATIONS = {
    "rename": rename_identifiers,
    "reorder": reorder_functions,
    "inline": inline_helper,
    "for_to_while": for_to_while,
}
