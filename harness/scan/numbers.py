"""What number an expression stands for, when the code fixes it: literals, module constants, class fields,
settings (`Hyperparameters` fields, `os.environ.get("X", default)`), and arithmetic over them.

`numbers_of(ctx).value(expr, local)` returns a `Number` (the value, and where it was fixed) or None when the
expression depends on anything computed at run time (a tensor, a parameter, a file). Nothing is executed.
Used to tell a fixed ratio (`BYTES_PER_TOKEN = 3.7`) from a count the script measures.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.scan.config import _env_read, resolve_settings

if TYPE_CHECKING:  # pragma: no cover
    from harness.context import AuditContext

_CASTS = {"float", "int"}
_MATH = {"log": math.log, "log2": math.log2, "exp": math.exp, "sqrt": math.sqrt}


@dataclass(frozen=True)
class Number:
    value: float
    origin: str          # "literal" or e.g. "module constant BYTES_PER_TOKEN (train_gpt.py:5)"


def numbers_of(ctx: AuditContext) -> Numbers:
    """The resolver of the submission's code, built once per audit."""
    return ctx.derived(Numbers)


class Numbers:
    """Resolves names of one submission's code to fixed numbers."""

    def __init__(self, ctx: AuditContext):
        self.ctx = ctx
        self.module: dict[str, list[tuple[ast.expr, str, int]]] = {}
        self.fields: dict[str, list[tuple[ast.expr, str, int]]] = {}
        for unit in ctx.units:
            for stmt in unit.tree.body:
                self._collect(stmt, unit.name, self.module)
                if isinstance(stmt, ast.ClassDef):
                    for inner in stmt.body:
                        self._collect(inner, unit.name, self.fields)
        self._settings: dict | None = None

    @staticmethod
    def _collect(stmt: ast.stmt, file: str, into: dict[str, list[tuple[ast.expr, str, int]]]) -> None:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    into.setdefault(target.id, []).append((stmt.value, file, stmt.lineno))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            into.setdefault(stmt.target.id, []).append((stmt.value, file, stmt.lineno))

    @property
    def settings(self) -> dict:
        if self._settings is None:
            try:
                self._settings = resolve_settings(self.ctx)
            except Exception:  # noqa: BLE001 - unresolvable settings are just not numbers
                self._settings = {}
        return self._settings

    def value(self, expr: ast.expr, local: dict[str, list[ast.expr]] | None = None,
              depth: int = 6) -> Number | None:
        """The fixed number `expr` evaluates to, or None. `local`: the enclosing function's assignments."""
        try:
            return self._value(expr, local or {}, depth)
        except (ArithmeticError, ValueError, TypeError, RecursionError):
            return None

    def _value(self, expr: ast.expr, local: dict[str, list[ast.expr]], depth: int) -> Number | None:
        if depth < 0:
            return None
        if isinstance(expr, ast.Constant):
            v = expr.value
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                return None
            return Number(float(v), "literal")
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
            inner = self._value(expr.operand, local, depth - 1)
            if inner is None:
                return None
            return Number(-inner.value if isinstance(expr.op, ast.USub) else inner.value, inner.origin)
        if isinstance(expr, ast.BinOp):
            left = self._value(expr.left, local, depth - 1)
            right = self._value(expr.right, local, depth - 1) if left is not None else None
            if left is None or right is None:
                return None
            op = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                  ast.Div: lambda a, b: a / b}.get(type(expr.op))
            if op is None:
                return None
            origin = right.origin if left.origin == "literal" else left.origin
            return Number(op(left.value, right.value), origin)
        if isinstance(expr, ast.Name):
            return self._name(expr.id, local, depth)
        if isinstance(expr, ast.Attribute):
            return self._attribute(expr, depth)
        if isinstance(expr, ast.Call):
            return self._call(expr, local, depth)
        return None

    def _name(self, name: str, local: dict[str, list[ast.expr]], depth: int) -> Number | None:
        if name in local:
            values = local[name]
            return self._value(values[0], local, depth - 1) if len(values) == 1 else None
        found = self.module.get(name)
        if found and len(found) == 1:
            expr, file, line = found[0]
            inner = self._value(expr, {}, depth - 1)
            if inner is not None:
                via = "" if inner.origin == "literal" else f", from {inner.origin}"
                return Number(inner.value, f"module constant {name} ({file}:{line}{via})")
        return None

    def _attribute(self, expr: ast.Attribute, depth: int) -> Number | None:
        setting = self._setting(expr.attr)
        if setting is not None:
            return setting
        found = self.fields.get(expr.attr)
        if found and len(found) == 1:
            value, file, line = found[0]
            inner = self._value(value, {}, depth - 1)
            if inner is not None:
                return Number(inner.value, f"class field {expr.attr} ({file}:{line})")
        return None

    def _setting(self, name: str) -> Number | None:
        setting = self.settings.get(name) or self.settings.get(name.lower())
        if setting is None:
            return None
        for raw in (setting.effective, setting.default):
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                where = f"{setting.file}:{setting.line}" if setting.file else setting.source
                env = f", env {setting.env}" if setting.env else ""
                return Number(float(raw), f"setting {name}{env} ({where})")
        return None

    def _call(self, expr: ast.Call, local: dict[str, list[ast.expr]], depth: int) -> Number | None:
        read = _env_read(expr)
        if read is not None:
            env, default = read
            setting = self._setting(env)
            if setting is not None:
                return setting
            inner = self._value(default, local, depth - 1) if default is not None else None
            return Number(inner.value, f"environment default {env}") if inner is not None else None
        f = expr.func
        if len(expr.args) != 1 or expr.keywords:
            return None
        if isinstance(f, ast.Name) and f.id in _CASTS:
            return self._value(expr.args[0], local, depth - 1)
        if isinstance(f, ast.Attribute) and f.attr in _MATH and isinstance(f.value, ast.Name) \
                and f.value.id in ("math", "np", "numpy", "torch"):
            inner = self._value(expr.args[0], local, depth - 1)
            return Number(_MATH[f.attr](inner.value), inner.origin) if inner is not None else None
        return None
