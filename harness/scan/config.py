"""Resolve a submission's effective settings statically, and decide whether a branch runs.

Defaults come from the script: `class Hyperparameters` attributes, `NAME = int(os.environ.get("ENV", d))`
anywhere, `os.getenv`. Overrides, weakest first: the README's run command(s) (`ENV=value ... torchrun ...`,
`export ENV=value`), run scripts (`*.sh`), then each log's hyperparameter dump (`  key: value` after
`Hyperparameters:`), which records what actually ran. Nothing is executed: a default that is not a
literal (or a simple conversion of one) stays `UNKNOWN`. Strongest of all is a value a log line printed,
bound to the print call that wrote it (`ttt={args.ttt_enabled}` printed `ttt=True`, harness.scan.logbind):
that is what ran, and its source names the log line.

Keys of `resolve_settings`: env names as written (upper-case) and attribute names lower-case.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from typing import Any

from harness.astwalk import walk
from harness.context import AuditContext
from harness.scan.logbind import log_value
from harness.scan.vocabulary import enclosing_function


class _Unknown:
    _inst: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # pragma: no cover - guard against silent truthiness
        raise TypeError("UNKNOWN has no truth value")


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Setting:
    """One setting. `default`/`effective` are converted as the script converts them (int, float,
    bool(int(...)) ...); `source` says where `effective` came from: default | README | <x>.sh | log:<file>."""

    name: str
    default: object
    effective: object
    source: str
    env: str | None = None
    attr: str | None = None
    line: int | None = None
    file: str | None = None


@dataclass(frozen=True)
class _Decl:
    env: str | None
    attr: str | None
    default: object
    convert: ast.expr | None     # expression with the env read replaced by a placeholder Name
    line: int
    file: str


_PLACEHOLDER = "__golfaudit_env_value__"
ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# -- declarations in code -------------------------------------------------------------------------
def _env_read(node: ast.AST) -> tuple[str, ast.expr | None] | None:
    """(ENV, default-expr) for os.environ.get("ENV", d) / os.getenv("ENV", d) / os.environ["ENV"]."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        f = node.func
        name = ""
        if isinstance(f, ast.Attribute):
            inner = f.value
            if f.attr == "get" and isinstance(inner, ast.Attribute) and inner.attr == "environ":
                name = "get"
            elif f.attr == "getenv":
                name = "get"
        elif isinstance(f, ast.Name) and f.id == "getenv":
            name = "get"
        if name:
            default = node.args[1] if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "default":
                    default = kw.value
            return node.args[0].value, default
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "environ":
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value, None
    return None


def _env_helpers(unit) -> set[str]:
    """Functions like `def _e(k, d, t=str): v = os.environ.get(k, str(d)); ...` (env read of a parameter)."""
    if "def " not in unit.text:
        return set()
    out = set()
    for node in unit.tree.body:
        if isinstance(node, ast.FunctionDef) and node.args.args:
            first = node.args.args[0].arg
            for sub in walk(node):
                if isinstance(sub, ast.Call) and sub.args and isinstance(sub.args[0], ast.Name) \
                        and sub.args[0].id == first and isinstance(sub.func, ast.Attribute) \
                        and sub.func.attr in ("get", "getenv"):
                    out.add(node.name)
                    break
    return out


def _helper_convert(call: ast.Call, convert: ast.expr) -> ast.expr:
    """`_e("X", d, int)` → int(value); `bool` → bool(int(value)); no type → the raw string."""
    kind = call.args[2] if len(call.args) > 2 else next((k.value for k in call.keywords if k.arg in ("t", "type")),
                                                         None)
    if not isinstance(kind, ast.Name) or kind.id not in ("int", "float", "bool", "str"):
        return convert
    inner: ast.expr = ast.Name(_PLACEHOLDER, ast.Load())
    if kind.id == "bool":
        inner = ast.Call(ast.Name("int", ast.Load()), [inner], [])
    wrapped = ast.Call(ast.Name(kind.id, ast.Load()), [inner], [])
    return _substitute(convert, wrapped)


def _substitute(expr: ast.expr, replacement: ast.expr) -> ast.expr:
    class Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return replacement if node.id == _PLACEHOLDER else node

    return Sub().visit(expr)


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST):
        self.target = target

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return ast.Name(_PLACEHOLDER, ast.Load())
        return super().visit(node)


def _literal(node: ast.expr | None) -> object:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def _declarations(units) -> list[_Decl]:
    out: list[_Decl] = []
    for unit in units:
        if "environ" not in unit.text and "getenv" not in unit.text and "class " not in unit.text:
            continue
        parents = unit.parents
        reads: list[tuple[ast.AST, tuple[str, ast.expr | None]]] = []
        hyper_classes: list[ast.ClassDef] = []
        helpers = _env_helpers(unit)
        for node in unit.nodes:
            if isinstance(node, (ast.Call, ast.Subscript)):
                read = _env_read(node)
                if read:
                    reads.append((node, read))
                elif helpers and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id in helpers and node.args and isinstance(node.args[0], ast.Constant) \
                        and isinstance(node.args[0].value, str):
                    reads.append((node, (node.args[0].value, node.args[1] if len(node.args) > 1 else None)))
            elif isinstance(node, ast.ClassDef) and ("hyper" in node.name.lower()
                                                     or node.name.lower() in ("args", "config", "settings")):
                hyper_classes.append(node)
        declared_in_assign: set[int] = set()
        for node, (env, default_expr) in reads:
            stmt = parents.get(node)
            while stmt is not None and not isinstance(stmt, ast.stmt):
                stmt = parents.get(stmt)
            default_raw = _literal(default_expr) if default_expr is not None else None
            value = getattr(stmt, "value", None) if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
            if value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                attr = next((t.id if isinstance(t, ast.Name) else t.attr for t in targets
                             if isinstance(t, (ast.Name, ast.Attribute))), None)
                if id(stmt) in declared_in_assign:
                    continue
                declared_in_assign.add(id(stmt))
                memo: dict[int, Any] = {}
                convert = copy_expr(value, memo)
                target = memo.get(id(node))
                convert = _Replace(target).visit(convert) if target is not None else None
                if convert is not None and not _env_read(node):
                    convert = _helper_convert(node, convert)
                out.append(_Decl(env, attr, _convert(convert, default_raw), convert, stmt.lineno, unit.name))
            else:
                out.append(_Decl(env, None, default_raw, None, getattr(node, "lineno", 0), unit.name))
        for cls in hyper_classes:
            for stmt in cls.body:
                if isinstance(stmt, ast.Assign) and id(stmt) not in declared_in_assign:
                    for t in stmt.targets:
                        if isinstance(t, ast.Name):
                            out.append(_Decl(None, t.id, _literal(stmt.value), None, stmt.lineno, unit.name))
    return out


# -- a tiny evaluator ---------------------------------------------------------------------------------
def _convert(expr: ast.expr | None, raw: object) -> object:
    """Apply the script's conversion (`expr`, placeholder = raw env string or default) to `raw`."""
    if expr is None:
        return raw
    if raw is UNKNOWN:
        return UNKNOWN
    return _eval(expr, {_PLACEHOLDER: raw})


_SAFE_CALLS = {"int": int, "float": float, "bool": bool, "str": str}
_SAFE_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip"}


def _eval(node: ast.expr, env: dict[str, object]) -> object:
    try:
        return _ev(node, env)
    except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError, RecursionError):
        return UNKNOWN


def _ev(node: ast.expr, env: dict[str, object]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            value = env[node.id]
            if value is UNKNOWN:
                raise ValueError
            return value
        raise KeyError(node.id)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return tuple(_ev(e, env) for e in node.elts)
    if isinstance(node, ast.Call):
        f = node.func
        args = [_ev(a, env) for a in node.args]
        if isinstance(f, ast.Name) and f.id in _SAFE_CALLS and not node.keywords and len(args) <= 1:
            fn = _SAFE_CALLS[f.id]
            if fn in (int, float) and isinstance(args[0] if args else None, str):
                text = args[0].strip()
                return fn(float(text)) if fn is int and "." in text else fn(text)
            return fn(*args)
        if isinstance(f, ast.Attribute) and f.attr in _SAFE_METHODS and not node.args:
            target = _ev(f.value, env)
            if isinstance(target, str):
                return getattr(target, f.attr)()
        raise ValueError
    if isinstance(node, ast.UnaryOp):
        v = _ev(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not v
        if isinstance(node.op, ast.USub):
            return -v  # type: ignore[operator]
        raise ValueError
    if isinstance(node, ast.BoolOp):
        # three-valued: a known False decides `and`, a known True decides `or`, whatever the rest is
        values: list[object] = []
        for v in node.values:
            try:
                values.append(_ev(v, env))
            except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError):
                values.append(UNKNOWN)
        want = isinstance(node.op, ast.Or)
        for v in values:
            if v is not UNKNOWN and bool(v) == want:
                return v
        if any(v is UNKNOWN for v in values):
            raise ValueError
        return values[-1]
    if isinstance(node, ast.Compare):
        left = _ev(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            right = _ev(comp, env)
            ok = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Gt: lambda a, b: a > b,
                  ast.GtE: lambda a, b: a >= b, ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
                  ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
                  ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b}.get(type(op))
            if ok is None or not ok(left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _ev(node.body, env) if _ev(node.test, env) else _ev(node.orelse, env)
    raise ValueError


# -- overrides from README / run scripts / logs ------------------------------------------------------
def _env_from_shell(text: str) -> dict[str, str]:
    """ENV=value pairs from shell text: `export X=1`, `X=1 Y=2 torchrun ...` (backslash continuations
    joined). Values that are shell expansions (`$SEED`) are skipped."""
    out: dict[str, str] = {}
    joined = re.sub(r"\\\r?\n", " ", text)
    for raw in joined.splitlines():
        line = raw.strip().replace("\\_", "_")
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if not words:
            continue
        if words[0] in ("export", "env"):
            words = words[1:]
        elif not ENV_ASSIGN.match(words[0]):
            continue
        for w in words:
            if not ENV_ASSIGN.match(w):
                break
            key, _, value = w.partition("=")
            if "$" in value or "`" in value:
                continue
            out[key] = value
    return out


def _readme_env(readme: str) -> dict[str, str]:
    """Overrides from the README's fenced code blocks and inline run lines that launch a script."""
    out: dict[str, str] = {}
    blocks = re.findall(r"```[^\n]*\n(.*?)```", readme, flags=re.S)
    for block in blocks:
        out.update(_env_from_shell(block))
    for m in re.finditer(r"`([^`\n]*(?:torchrun|python3?)\s[^`\n]*)`", readme):
        out.update(_env_from_shell(m.group(1)))
    return out


def copy_expr(node: Any, memo: dict[int, Any]) -> Any:
    """Copy an expression's syntax fields only. `copy.deepcopy` also follows attributes other passes
    attach to nodes (parent links, caches) and copied whole modules once per setting: minutes per record."""
    if isinstance(node, ast.AST):
        new = type(node)()
        for field, value in ast.iter_fields(node):
            setattr(new, field, copy_expr(value, memo))
        for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if hasattr(node, attr):
                setattr(new, attr, getattr(node, attr))
        memo[id(node)] = new
        return new
    if isinstance(node, list):
        return [copy_expr(item, memo) for item in node]
    return node


def resolve_settings(ctx: AuditContext) -> dict[str, Setting]:
    """Every setting the code declares (plus any the run config names), keyed by ENV and attr names;
    computed once per audit."""
    return ctx.derived(_resolve)


def _resolve(ctx: AuditContext) -> dict[str, Setting]:
    sub = ctx.submission
    decls = sorted(_declarations(ctx.units), key=lambda d: d.attr is None)  # assignments first
    readme = _readme_env(getattr(sub, "readme_text", "") or "")
    scripts: list[tuple[str, dict[str, str]]] = []
    for name in sorted(getattr(sub, "files", {})):
        if name.endswith(".sh") and "setup" not in name.rsplit("/", 1)[-1].lower():
            try:
                scripts.append((name.rsplit("/", 1)[-1], _env_from_shell(sub.read_source(name))))
            except Exception:  # noqa: BLE001 - an unreadable run script is just not an override
                continue
    logs: list[tuple[str, dict[str, str]]] = []
    for log in getattr(sub, "logs", []) or []:
        hp = getattr(log, "hyperparams", None)
        if hp:
            logs.append((log.name, dict(hp)))

    bound = bound_values(ctx)
    settings: dict[str, Setting] = {}
    seen: set[tuple[str | None, str | None]] = set()
    for d in decls:
        if (d.env, d.attr) in seen:
            continue
        seen.add((d.env, d.attr))
        effective, source = d.default, "default"
        if d.env:
            for label, env in [("README", readme), *scripts]:
                if d.env in env:
                    effective, source = _convert(d.convert, env[d.env]), label
        if d.attr:
            for label, hp in logs:
                if d.attr.lower() in hp:
                    effective, source = log_value(hp[d.attr.lower()], percent=False), f"log:{label}"
                    break
        printed = bound.get(("env", d.env)) if d.env else None
        if printed is None and d.attr:
            printed = bound.get(("attr", d.attr.lower())) or (bound.get(("name", d.attr)) if d.attr.isupper()
                                                              else None)
        if printed is not None:
            effective, source = _as_default(printed[0], d.default), printed[1]
        name = d.env or d.attr or "?"
        s = Setting(name, d.default, effective, source, d.env, d.attr.lower() if d.attr else None, d.line, d.file)
        if d.env and (d.env not in settings or settings[d.env].source == "default"):
            settings[d.env] = s
        if d.attr:
            key = d.attr.lower()
            if key not in settings or settings[key].source == "default":
                settings[key] = s
            if d.attr != key and d.attr not in settings:
                settings[d.attr] = s
    # run-config names the code does not declare (still useful as evidence)
    for label, env in [("README", readme), *scripts]:
        for k, v in env.items():
            if k not in settings:
                settings[k] = Setting(k, UNKNOWN, log_value(v, percent=False), label, k)  # "0" → 0, "1.5" → 1.5
    return settings


def _as_default(value: object, default: object) -> object:
    """A printed value in the type of the setting's default (`1` for a bool flag is True)."""
    if isinstance(default, bool) and value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def setting_key(expr: ast.expr | None) -> tuple[str, str] | None:
    """What a printed expression names as a setting: ("attr", name) for `args.x` / `h.x`, ("name", X) for a
    module constant `X`, ("env", NAME) for `os.environ.get("NAME", ...)`; None for anything computed."""
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        return "attr", expr.attr.lower()
    if isinstance(expr, ast.Name):
        return "name", expr.id
    read = _env_read(expr) if expr is not None else None
    if read:
        return "env", read[0]
    return None


def bound_values(ctx: AuditContext) -> dict[tuple[str, str], tuple[object, str]]:
    """Settings the logs printed, bound to the print that wrote them (harness.scan.logbind): key of
    `setting_key` → (value, source naming the log line). Only the logs that print a bpb submission.json
    claims count when some do. A setting printed with different values in different lines or logs is left
    out (which run is meant cannot be told)."""
    try:
        from harness.scan.logbind import log_bindings
        from harness.scan.reported import claim_logs

        bindings = log_bindings(ctx).bindings
        logs = claim_logs(ctx)
    except Exception:  # noqa: BLE001 - binding is evidence on top; without it the other sources decide
        return {}
    if logs is not None:                # the runs the claimed score comes from
        bindings = [b for b in bindings if b.log in logs]
    seen: dict[tuple[str, str], tuple[object, str]] = {}
    conflict: set[tuple[str, str]] = set()
    for b in bindings:
        for hole, value in b.holes:
            key = setting_key(hole.expr)
            if key is None or key in conflict:
                continue
            source = f"log {b.log}:{b.log_line} (`{b.text.strip()[:80]}`)"
            if key in seen and seen[key][0] != value:
                conflict.add(key)
                seen.pop(key)
                continue
            seen.setdefault(key, (value, source))
    return seen


# -- branch state -------------------------------------------------------------------------------------
def _lookup(node: ast.expr, settings: dict[str, Setting], which: str) -> tuple[object, str] | None:
    """(value, name) of a setting reference: `NAME`, `h.name`/`args.name`, `os.environ.get(...)`."""
    key = None
    if isinstance(node, ast.Name):
        key = node.id if node.id in settings else node.id.lower()
    elif isinstance(node, ast.Attribute):
        key = node.attr.lower()
    if key is not None:
        s = settings.get(key)
        if s is None:
            return None
        return (s.default if which == "default" else s.effective), s.name
    read = _env_read(node)
    if read:
        s = settings.get(read[0])
        if s is None:
            return (_literal(read[1]) if read[1] is not None else None), read[0]
        raw = s.default if which == "default" else s.effective
        return raw, s.name
    return None


class _Bind(ast.NodeTransformer):
    """Replace setting references by placeholders, collecting their values."""

    def __init__(self, settings: dict[str, Setting], which: str):
        self.settings, self.which = settings, which
        self.values: dict[str, object] = {}
        self.used: list[str] = []

    def _bind(self, node: ast.expr) -> ast.expr | None:
        found = _lookup(node, self.settings, self.which)
        if found is None:
            return None
        value, name = found
        ph = f"__v{len(self.values)}"
        self.values[ph] = value
        self.used.append(name)
        return ast.Name(ph, ast.Load())

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return self._bind(node) or node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return self._bind(node) or node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _env_read(node):
            replaced = self._bind(node)
            if replaced is not None:
                return replaced
        return self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if _env_read(node):
            replaced = self._bind(node)
            if replaced is not None:
                return replaced
        return self.generic_visit(node)


def _evaluate(ctx: AuditContext, test: ast.expr, which: str) -> tuple[bool | None, list[str]]:
    settings = resolve_settings(ctx)
    binder = _Bind(settings, which)
    bound = binder.visit(copy_expr(test, {}))
    if not binder.used:
        return None, []
    value = _eval(bound, binder.values)  # env strings from READMEs are converted via the setting
    if value is UNKNOWN:
        return None, binder.used
    try:
        return bool(value), binder.used
    except TypeError:
        return None, binder.used


def constant_value(test: ast.expr) -> bool | None:
    """Truth of a test made of literals only (after its names were resolved), None when it is not."""
    value = _eval(test, {})
    if value is UNKNOWN:
        return None
    try:
        return bool(value)
    except TypeError:
        return None


def enabled_by_default(ctx: AuditContext, test: ast.expr) -> bool | None:
    """Truth of `test` with every setting at the script's default; None when it cannot be decided."""
    return _evaluate(ctx, test, "default")[0]


def enabled_by_run(ctx: AuditContext, test: ast.expr) -> bool | None:
    """Truth of `test` under the effective settings (README/run.sh/log overrides, else defaults)."""
    return _evaluate(ctx, test, "effective")[0]


def branch_state(ctx: AuditContext, test: ast.expr) -> tuple[str, str]:
    """("on"|"off"|"unknown", why) for an `if` test under the submission's effective settings."""
    value, used = _evaluate(ctx, test, "effective")
    settings = resolve_settings(ctx)
    parts = []
    for name in dict.fromkeys(used):
        s = settings.get(name) or settings.get(name.lower())
        if s is None:
            parts.append(f"{name} is read with an inline default and set by no README/run script/log")
            continue
        if s.source == "default":
            parts.append(f"{s.name}={_show(s.default)} by default, not set by README/run script/logs")
        else:
            parts.append(f"{s.name}={_show(s.effective)} from {s.source} (default {_show(s.default)})")
    why = "; ".join(parts) if parts else f"`{_unparse(test)}` refers to no known setting"
    if value is None:
        return "unknown", why
    return ("on" if value else "off"), why


def _show(value: object) -> str:
    return "?" if value is UNKNOWN else repr(value) if isinstance(value, str) else str(value)


def _unparse(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:120]
    except Exception:  # noqa: BLE001
        return "?"


# -- where is a function used, and does that branch run? -------------------------------------------
@dataclass(frozen=True)
class Use:
    """One reference to a function outside its own body, and whether the branch holding it runs."""

    file: str
    line: int
    state: str      # "on" | "off" | "unknown"
    why: str


def _guards(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[ast.expr]:
    """Tests that must hold for `node` to run, innermost first (else-branches negated)."""
    out: list[ast.expr] = []
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, (ast.If, ast.IfExp, ast.While)):
            body = parent.body if isinstance(parent.body, list) else [parent.body]
            orelse = parent.orelse if isinstance(parent.orelse, list) else [parent.orelse]
            if child in body:
                out.append(parent.test)
            elif child in orelse:
                out.append(ast.UnaryOp(ast.Not(), parent.test))
        elif isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.And):
            idx = parent.values.index(child) if child in parent.values else 0
            out.extend(parent.values[:idx])
        elif isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            break
        child, parent = parent, parents.get(parent)
    return out


def function_uses(ctx: AuditContext, name: str, _depth: int = 3, _seen: frozenset[str] = frozenset()) -> list[Use]:
    """References to function `name` (calls, or passed as a value) outside its own definition. A reference
    inside another function (not `main`) also takes that function's own state: if every call of the
    caller is off, so is this reference; if the caller is never called, the reference is dropped."""
    uses: list[Use] = []
    for unit in ctx.units:
        if name not in unit.text:
            continue
        parents = unit.parents
        for node in unit.nodes:
            hit = (isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)) or \
                  (isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.ctx, ast.Load))
            if not hit:
                continue
            up = parents.get(node)
            inside_self = False
            while up is not None:
                if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)) and up.name == name:
                    inside_self = True
                    break
                up = parents.get(up)
            if inside_self:
                continue
            caller = enclosing_function(node, parents)
            state, why = node_state(ctx, unit, node)
            if state != "off" and caller is not None and caller.name not in ("main", name) and _depth > 0 \
                    and caller.name not in _seen:
                outer, outer_why = overall_use(function_uses(ctx, caller.name, _depth - 1, _seen | {name}))
                if outer == "unused":
                    continue
                if outer == "off":
                    state, why = "off", f"its caller {caller.name}() {outer_why}"
                elif outer == "unknown" and state == "on":
                    state, why = "unknown", f"its caller {caller.name}() is {outer_why}"
            uses.append(Use(unit.name, getattr(node, "lineno", 0), state, why))
    return uses


def overall_use(uses: list[Use]) -> tuple[str, str]:
    """("on"|"off"|"unknown"|"unused", why) over all references: any on → on; all off → off."""
    if not uses:
        return "unused", "never called"
    on = [u for u in uses if u.state == "on"]
    if on:
        return "on", f"called at {on[0].file}:{on[0].line} ({on[0].why})"
    unknown = [u for u in uses if u.state == "unknown"]
    if unknown:
        return "unknown", f"called at {unknown[0].file}:{unknown[0].line} under a condition that could not be " \
                          f"decided ({unknown[0].why})"
    return "off", f"called only at {uses[0].file}:{uses[0].line}, in a branch that is off ({uses[0].why})"


def node_state(ctx: AuditContext, unit: Any, node: ast.AST) -> tuple[str, str]:
    """("on"|"off"|"unknown", why) for the `if` branches (on known settings) holding `node` in its function.
    Conditions on no known setting (loop counters, ranks) do not decide whether the code is used."""
    guards = [g for g in _guards(node, unit.parents) if _evaluate(ctx, g, "effective")[1]]
    if not guards:
        return "on", "reached unconditionally"
    states = [branch_state(ctx, g) for g in guards]
    if any(s == "off" for s, _ in states):
        return "off", "; ".join(w for s, w in states if s == "off")
    if all(s == "on" for s, _ in states):
        return "on", "; ".join(w for _, w in states)
    return "unknown", "; ".join(w for s, w in states if s == "unknown")
