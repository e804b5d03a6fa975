"""The code a submission runs, as parsed units: packed scripts unpacked, exec'd and imported siblings followed.

Nothing is executed. `load_code(sub)` starts at the main script; a pure wrapper (imports, constants, and
`exec` of resolved code or of a sibling file) is replaced by what it runs, so `bundle.main` is the code that
actually runs. Decoded code is named "<file> (unpacked)" and keeps its own line numbers (line 1 = first line
of the decoded text). Files are followed inside the submission folder only; symlinks are never followed.
Every obstacle is a `CodeProblem`, never an exception.
"""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass
from functools import cached_property

from harness.astwalk import local_values, walk
from harness.parse import ParseFailure, parse_source
from harness.submission import LoadError, Submission
from harness.unpack import (
    ExecSite,
    Limits,
    Scope,
    Spend,
    build_scope,
    call_qualname,
    find_exec_sites,
    is_wrapper,
)

LAUNCHERS = ("subprocess.", "os.system", "os.exec", "os.spawn", "os.popen")


@dataclass(frozen=True)
class CodeUnit:
    """One parsed Python source: the name findings cite, its text and its tree, and what the scanner and
    the rules ask of it (computed once per unit)."""

    name: str                           # file name for findings, or "<file> (unpacked)"
    text: str                           # the source text (unpacked when packed)
    tree: ast.Module
    via: str = "ast"                    # "ast" | "libcst"
    packed_from: str | None = None      # file holding the packed literal
    packed_line: int | None = None      # its line in that file (for nested packing: the outermost line)
    layers: tuple[str, ...] = ()        # decoding chain, outermost first, e.g. ("b85", "lzma-raw")

    @cached_property
    def nodes(self) -> list[ast.AST]:
        """Every node of the tree, walked once and shared by all rules."""
        return walk(self.tree)

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

    @cached_property
    def functions(self) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
        return [n for n in self.nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    @cached_property
    def _values(self) -> dict[int, tuple[ast.AST, dict[str, list[ast.expr]]]]:
        return {}

    def segment(self, node: ast.AST) -> str:
        """Source lines of `node` (cheap pre-filter before walking it)."""
        start, end = getattr(node, "lineno", 1), getattr(node, "end_lineno", None) or len(self.lines)
        return "\n".join(self.lines[start - 1:end])

    def walk(self, node: ast.AST) -> list[ast.AST]:
        """`ast.walk(node)` as a list, computed once per node."""
        return walk(node)

    def values(self, fn: ast.AST) -> dict[str, list[ast.expr]]:
        """`local_values(fn)`, computed once per function."""
        key = id(fn)
        if key not in self._values:
            self._values[key] = (fn, local_values(fn))
        return self._values[key][1]

    def line_text(self, line: int | None, width: int = 200) -> str:
        if line and 1 <= line <= len(self.lines):
            return self.lines[line - 1].strip()[:width]
        return ""


@dataclass(frozen=True)
class CodeProblem:
    file: str
    line: int | None
    kind: str       # "bomb" | "unreadable" | "syntax" | "outside-folder" | "dynamic"
    message: str


@dataclass(frozen=True)
class CodeBundle:
    units: tuple[CodeUnit, ...]
    problems: tuple[CodeProblem, ...]

    @property
    def main(self) -> CodeUnit | None:
        return self.units[0] if self.units else None

    def unit(self, name: str) -> CodeUnit | None:
        return next((u for u in self.units if u.name == name), None)


def load_code(sub: Submission, script: str | None = None, limits: Limits | None = None) -> CodeBundle:
    """The bundle for `script` (default: the submission's first script name). An audit loads it once:
    `AuditContext.code` (harness.context) holds it."""
    if script is None:
        script = sub.script_names[0] if sub.script_names else None
    return _Loader(sub, limits or Limits()).run(script)


def parsed_scripts(sub: Submission) -> list[CodeUnit]:
    """The submission's scripts parsed directly, nothing followed: the code to read when the loader itself
    fails. Unparseable files are skipped: RECORDS-FOLDER reports those."""
    out = []
    names = list(sub.script_names)
    if not sub.single_file:
        names += sorted(n for n in sub.files if n.endswith(".py") and n not in names)
    for name in names:
        try:
            text = sub.read_source(name)
            out.append(CodeUnit(name, text, parse_source(text, name).tree))
        except (LoadError, ParseFailure, OSError):
            continue
    return out


@dataclass(frozen=True)
class _Origin:
    """Where a piece of text came from: the file on disk, and how it was decoded."""
    file: str
    packed_from: str | None = None
    packed_line: int | None = None
    layers: tuple[str, ...] = ()


class _Loader:
    def __init__(self, sub: Submission, limits: Limits):
        self.sub = sub
        self.limits = limits
        self.units: list[CodeUnit] = []
        self.problems: list[CodeProblem] = []
        self.visited: set[str] = set()
        self.total = 0
        self.spend = Spend()

    def run(self, script: str | None) -> CodeBundle:
        if script is not None:
            self.follow(script, None, None, depth=0)
        return CodeBundle(tuple(self.units), tuple(dict.fromkeys(self.problems)))

    def problem(self, file: str, line: int | None, kind: str, message: str) -> None:
        self.problems.append(CodeProblem(file, line, kind, message))

    # -- files ----------------------------------------------------------------------------------
    def follow(self, rel: str, by: str | None, line: int | None, depth: int) -> bool:
        """Load the folder file `rel` (referred to from `by` at `line`); False when it could not be."""
        where = by or rel
        rel = posixpath.normpath(rel)
        if posixpath.isabs(rel) or rel == ".." or rel.startswith("../"):
            self.problem(where, line, "outside-folder", f"runs {rel}, which is outside the submission folder")
            return False
        if rel in self.visited:
            return True
        if rel in self.sub.symlinks or any(rel.startswith(s + "/") for s in self.sub.symlinks):
            self.problem(where, line, "outside-folder", f"runs {rel}, which is a symlink (not followed)")
            return False
        if rel not in self.sub.files:
            message = (f"runs {rel}, which is not in the submission folder" if by
                       else f"{rel}: not found in the submission folder")
            self.problem(where, line, "unreadable", message)
            return False
        self.visited.add(rel)
        try:
            text = self.sub.read_source(rel)
        except (LoadError, OSError) as exc:
            self.problem(rel, None, "unreadable", str(exc))
            return False
        return self.process(rel, text, _Origin(rel), depth)

    # -- one piece of code ---------------------------------------------------------------------------
    def process(self, name: str, text: str, origin: _Origin, depth: int) -> bool:
        self.total += len(text)
        if self.total > self.limits.max_total:
            self.problem(name, None, "bomb", f"decoded code exceeds {self.limits.max_total} bytes in all; not followed")
            return False
        if len(text) > self.limits.max_parse:
            kind = "bomb" if origin.layers else "unreadable"
            self.problem(name, None, kind, f"{len(text)} characters of code, over the {self.limits.max_parse} "
                                           "parse limit; not parsed")
            return False
        try:
            parsed = parse_source(text, name)
        except ParseFailure as exc:
            self.problem(name, exc.line, "syntax", f"cannot be parsed: {exc.message}")
            return False
        unit = CodeUnit(name, text, parsed.tree, parsed.via, origin.packed_from, origin.packed_line, origin.layers)
        sites = find_exec_sites(parsed.tree, origin.file, self.limits, self.spend)
        resolved = [s for s in sites if s.kind in ("code", "file")]
        wrapper = is_wrapper(parsed.tree, {s.line for s in resolved}, origin.file)
        position = len(self.units)
        if not wrapper:
            self.units.append(unit)
        for site in sites:
            self.run_site(name, origin, site, depth)
        if wrapper and len(self.units) == position:
            self.units.insert(position, unit)  # nothing it runs could be loaded: keep the wrapper itself
        self.follow_imports(name, origin.file, parsed.tree, depth)
        return True

    def run_site(self, name: str, origin: _Origin, site: ExecSite, depth: int) -> None:
        if site.kind == "dynamic":
            self.problem(name, site.line, "dynamic", f"{site.func} of code that cannot be resolved statically "
                                                      f"({site.text})")
        elif site.kind == "error":
            self.problem(name, site.line, site.error_kind, site.text)
        elif depth + 1 > self.limits.max_depth:
            self.problem(name, site.line, "bomb",
                         f"code nested more than {self.limits.max_depth} levels deep; not followed")
        elif site.kind == "file":
            self.follow(site.path, name, site.line, depth + 1)
        else:
            packed_from = origin.packed_from or origin.file
            packed_line = origin.packed_line or site.line
            child = _Origin(origin.file, packed_from, packed_line, origin.layers + site.layers)
            child_name = f"{packed_from} (unpacked)"
            taken = {u.name for u in self.units}
            n = 2
            while child_name in taken:
                child_name = f"{packed_from} (unpacked #{n})"
                n += 1
            self.process(child_name, site.text, child, depth + 1)

    # -- imports of sibling modules --------------------------------------------------------------------
    def follow_imports(self, name: str, file: str, tree: ast.Module, depth: int) -> None:
        base = posixpath.dirname(file)
        scope = build_scope(tree, file)
        bases = [base, *self.path_entries(tree, scope, base)]
        for node in walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level <= 1:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
            elif isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module:
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.Call):
                modules = self.called_modules(node, scope)
                for path in self.launched_scripts(node, scope) + self.loaded_files(node, scope, base):
                    if depth + 1 <= self.limits.max_depth:
                        self.follow(path, name, node.lineno, depth + 1)
            for module in modules:
                parts = module.split(".")
                where = next((b for b in bases if self.module_file(b, parts[0]) is not None
                              or self.is_package_dir(posixpath.join(b, parts[0]))), base)
                for i in range(1, len(parts) + 1):  # importing a.b runs a/__init__.py, then a/b
                    target = self.module_file(where, ".".join(parts[:i]))
                    if target is None:
                        if self.is_package_dir(posixpath.join(where, *parts[:i])):
                            continue  # a namespace package (no __init__.py)
                        break
                    if depth + 1 <= self.limits.max_depth:
                        self.follow(target, name, node.lineno, depth + 1)

    def path_entries(self, tree: ast.Module, scope: Scope, base: str) -> list[str]:
        """Folders of the submission that `sys.path.insert(0, ...)` / `sys.path.append(...)` put on the import
        path (the literal folder name in the argument, relative to the script's folder)."""
        out: list[str] = []
        for node in walk(tree):
            if isinstance(node, ast.Call) and call_qualname(node.func, scope) in ("sys.path.insert",
                                                                                   "sys.path.append"):
                for const in walk(node):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value.strip("./"):
                        folder = posixpath.normpath(posixpath.join(base, const.value))
                        if not folder.startswith("..") and self.is_package_dir(folder) and folder not in out:
                            out.append(folder)
        return out

    def loaded_files(self, node: ast.Call, scope: Scope, base: str) -> list[str]:
        """Folder .py files loaded by path: importlib.util.spec_from_file_location,
        importlib.machinery.SourceFileLoader (the literal file name in the arguments; runpy.run_path is an
        exec site of harness.unpack)."""
        if call_qualname(node.func, scope) not in ("importlib.util.spec_from_file_location",
                                                   "importlib.machinery.SourceFileLoader"):
            return []
        out = []
        for const in walk(node):
            if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value.endswith(".py"):
                path = posixpath.normpath(posixpath.join(base, const.value))
                if path in self.sub.files or path in self.sub.symlinks:
                    out.append(path)
        return out

    def called_modules(self, node: ast.Call, scope: Scope) -> list[str]:
        """Literal module names given to importlib.import_module / __import__."""
        if call_qualname(node.func, scope) in ("importlib.import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                return [node.args[0].value]
        return []

    def launched_scripts(self, node: ast.Call, scope: Scope) -> list[str]:
        """Folder .py files named in the literal arguments of a subprocess / os.system / os.exec* call."""
        if not call_qualname(node.func, scope).startswith(LAUNCHERS):
            return []
        out = []
        for const in walk(node):
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                for word in const.value.split():
                    path = posixpath.normpath(word.strip("'\""))
                    if path.endswith(".py") and (path in self.sub.files or path in self.sub.symlinks):
                        out.append(path)
        return out

    def module_file(self, base: str, module: str) -> str | None:
        stem = posixpath.join(base, *module.split("."))
        for candidate in (stem + ".py", posixpath.join(stem, "__init__.py"), stem):
            if candidate == stem and stem not in self.sub.symlinks:
                continue  # a plain folder is a (namespace) package, not a file; a symlinked one is reported
            if candidate in self.sub.files or candidate in self.sub.symlinks:
                return candidate
        return None

    def is_package_dir(self, stem: str) -> bool:
        prefix = stem.lstrip("/") + "/"
        return any(name.startswith(prefix) for name in self.sub.files)
