"""Static unpacking of packed Python: `exec(lzma.decompress(base64.b85decode("…")))` and its kin.

Nothing is executed. A small evaluator walks the expression given to `exec`/`eval`/`compile`, resolving only
literals, names bound once to such expressions, imported module aliases, a whitelist of decoders
(base64/b85/a85/b32/hex, `codecs`, `.decode()`), decompressors (lzma incl. raw filters, zlib, gzip, bz2,
brotli, zstd) and file reads (`open(...).read()`, `Path(...).read_text()`), whose path it returns
instead of reading. Every decompression streams with caps on output size and ratio, so a bomb is
stopped after at most `Limits.max_output` bytes.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs
import io
import lzma
import posixpath
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.astwalk import walk
from harness.nodememo import NodeMemo


@dataclass(frozen=True)
class Limits:
    max_output: int = 64 * 1024 * 1024   # bytes out of one decompression
    max_ratio: int = 1000                # output / input of one decompression
    ratio_floor: int = 1024 * 1024       # the ratio cap applies only above this many output bytes
    max_depth: int = 20                  # exec-inside-exec levels
    max_total: int = 256 * 1024 * 1024   # all decompressed output and decoded code of one bundle together
    max_parse: int = 16 * 1024 * 1024    # one unit's source; larger code is not parsed


class Unresolvable(Exception):
    """The expression cannot be resolved statically (not an error: the code is simply dynamic)."""


class UnpackError(Exception):
    """Decoding failed for a reason worth reporting: `kind` is "bomb" or "unreadable"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


# -- bounded decompression -------------------------------------------------------------------------
STEP = 1024 * 1024


class Spend:
    """Bytes decompressed so far by one bundle: many small decodes cannot add up past `Limits.max_total`."""

    def __init__(self) -> None:
        self.total = 0

    def charge(self, n: int, limits: Limits) -> None:
        self.total += n
        if self.total > limits.max_total:
            raise UnpackError("bomb", f"decoded output exceeds {limits.max_total} bytes in all; not followed")


class _Budget:
    def __init__(self, layer: str, n_in: int, limits: Limits, spend: Spend | None = None):
        self.layer, self.n_in, self.limits = layer, n_in, limits
        self.spend = spend or Spend()
        self.cap = min(limits.max_output, max(limits.ratio_floor, limits.max_ratio * max(n_in, 1)))
        self.parts: list[bytes] = []
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.spend.charge(len(chunk), self.limits)
        self.total += len(chunk)
        if self.total > self.cap:
            why = (f"over {self.limits.max_output} bytes" if self.cap == self.limits.max_output
                   else f"over {self.limits.max_ratio}x its {self.n_in} input bytes")
            raise UnpackError("bomb", f"{self.layer} decompression stopped: output {why} (a decompression bomb?)")
        self.parts.append(chunk)

    def result(self) -> bytes:
        return b"".join(self.parts)


def _drain_lzma_like(make: Callable[[], Any], data: bytes, budget: _Budget, multi: bool) -> None:
    """LZMADecompressor / BZ2Decompressor protocol: decompress(data, max_length), needs_input, eof."""
    while True:
        dec = make()
        budget.add(dec.decompress(data, max_length=STEP))
        while not dec.eof and not dec.needs_input:
            budget.add(dec.decompress(b"", max_length=STEP))
        if not dec.eof:
            raise UnpackError("unreadable", f"{budget.layer} data is truncated")
        data = dec.unused_data
        if not (multi and data):
            return


def _drain_zlib(data: bytes, wbits: int, budget: _Budget, multi: bool) -> None:
    while True:
        dec = zlib.decompressobj(wbits)
        budget.add(dec.decompress(data, STEP))
        while dec.unconsumed_tail and not dec.eof:
            budget.add(dec.decompress(dec.unconsumed_tail, STEP))
        if not dec.eof:
            budget.add(dec.flush())
            if not dec.eof:
                raise UnpackError("unreadable", f"{budget.layer} data is truncated")
        data = dec.unused_data
        if not (multi and data):
            return


def _drain_brotli(data: bytes, budget: _Budget) -> None:
    try:
        import brotli
    except ImportError:
        raise UnpackError("unreadable", "brotli-packed code, but the brotli module is not installed") from None
    dec = brotli.Decompressor()
    budget.add(dec.process(data, output_buffer_limit=STEP))
    while not dec.is_finished():
        chunk = dec.process(b"", output_buffer_limit=STEP)
        if not chunk:
            raise UnpackError("unreadable", "brotli data is truncated")
        budget.add(chunk)


def _drain_zstd(data: bytes, budget: _Budget) -> None:
    try:
        import zstandard
    except ImportError:
        raise UnpackError("unreadable", "zstd-packed code, but the zstandard module is not installed") from None
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    while True:
        chunk = reader.read(STEP)
        if not chunk:
            return
        budget.add(chunk)


def decompress(layer: str, data: bytes, limits: Limits, spend: Spend | None = None, **params: Any) -> bytes:
    """Decompress `data` with the `layer` codec under `limits`; UnpackError on a bomb or bad data."""
    budget = _Budget(layer, len(data), limits, spend)
    try:
        if layer in ("lzma", "xz", "lzma-alone", "lzma-raw"):
            fmt = params.get("format", lzma.FORMAT_AUTO)
            filters = params.get("filters")
            _drain_lzma_like(lambda: lzma.LZMADecompressor(fmt, None, filters), data, budget,
                             multi=fmt != lzma.FORMAT_RAW)
        elif layer in ("zlib", "gzip"):
            _drain_zlib(data, params.get("wbits", 31 if layer == "gzip" else 15), budget, multi=layer == "gzip")
        elif layer == "bz2":
            _drain_lzma_like(bz2.BZ2Decompressor, data, budget, multi=True)
        elif layer == "brotli":
            _drain_brotli(data, budget)
        elif layer == "zstd":
            _drain_zstd(data, budget)
        else:
            raise UnpackError("unreadable", f"unknown codec {layer}")
    except UnpackError:
        raise
    except Exception as exc:  # noqa: BLE001 - each codec has its own error type
        raise UnpackError("unreadable", f"{layer} data cannot be decompressed: {exc}") from None
    return budget.result()


# -- values the evaluator produces ------------------------------------------------------------------
@dataclass(frozen=True)
class FileRead:
    """`open(path).read()` and kin: the path (as written, resolved against `__file__`), never read here."""
    path: str
    binary: bool = False


@dataclass(frozen=True)
class PathVal:
    path: str


@dataclass(frozen=True)
class OpenFile:
    path: str
    binary: bool


@dataclass(frozen=True)
class Module:
    name: str


@dataclass(frozen=True)
class Func:
    qualname: str


@dataclass(frozen=True)
class Const:
    """A module constant such as lzma.FORMAT_RAW (kept as its real value)."""
    value: Any


@dataclass(frozen=True)
class Code:
    """compile(source, ...) of a resolved source."""
    source: Any


@dataclass(frozen=True)
class DecompObj:
    """A decompressor object (zstandard.ZstdDecompressor(), zlib.decompressobj(...), ...) not yet fed."""
    layer: str
    params: tuple = ()


@dataclass
class Resolved:
    value: Any
    layers: tuple[str, ...] = ()


MODULE_CONSTANTS = {
    "lzma": ("FORMAT_", "FILTER_", "CHECK_", "PRESET_"),
    "zlib": ("MAX_WBITS",),
}
DECODERS = {
    "base64.b85decode": ("b85", base64.b85decode),
    "base64.a85decode": ("a85", base64.a85decode),
    "base64.b64decode": ("b64", base64.b64decode),
    "base64.standard_b64decode": ("b64", base64.standard_b64decode),
    "base64.urlsafe_b64decode": ("b64", base64.urlsafe_b64decode),
    "base64.decodebytes": ("b64", base64.decodebytes),
    "base64.b32decode": ("b32", base64.b32decode),
    "base64.b16decode": ("hex", base64.b16decode),
    "binascii.a2b_base64": ("b64", binascii.a2b_base64),
    "binascii.unhexlify": ("hex", binascii.unhexlify),
    "binascii.a2b_hex": ("hex", binascii.a2b_hex),
    "bytes.fromhex": ("hex", bytes.fromhex),
}
DECOMPRESSORS = {
    "lzma.decompress": "lzma", "zlib.decompress": "zlib", "gzip.decompress": "gzip", "bz2.decompress": "bz2",
    "brotli.decompress": "brotli", "zstandard.decompress": "zstd", "zstd.decompress": "zstd",
    "pyzstd.decompress": "zstd", "compression.zstd.decompress": "zstd",
}
CODECS_BINARY = {"base64": "b64", "base_64": "b64", "hex": "hex", "hex_codec": "hex", "zlib": "zlib",
                 "zip": "zlib", "zlib_codec": "zlib", "bz2": "bz2", "bz2_codec": "bz2",
                 "base64_codec": "b64"}


@dataclass
class Scope:
    """What the evaluator knows about one file: module aliases, names bound once, `__file__`."""
    filename: str
    aliases: dict[str, str] = field(default_factory=dict)      # local name -> dotted module/function
    bindings: dict[str, ast.expr] = field(default_factory=dict)  # name -> the one expression bound to it
    resolving: set[str] = field(default_factory=set)
    memo: dict[str, Any] = field(default_factory=dict)            # name -> Resolved or the exception it raised
    counts: dict[str, int] = field(default_factory=dict)          # name -> how often bound other than by import


_SCOPES: NodeMemo[Scope] = NodeMemo("scope")


def build_scope(tree: ast.Module, filename: str) -> Scope:
    """Collect import aliases and names assigned exactly once (anywhere in the file).

    The tables are computed once per (tree, filename); each call gets its own Scope (fresh memo)."""
    cached = _SCOPES.get(tree)
    if cached is None or cached.filename != filename:
        cached = _SCOPES.put(tree, _build_scope(tree, filename))
    return Scope(filename, dict(cached.aliases), dict(cached.bindings), counts=dict(cached.counts))


_BINDERS = frozenset({ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For,
                      ast.AsyncFor, ast.comprehension, ast.With, ast.AsyncWith, ast.FunctionDef,
                      ast.AsyncFunctionDef, ast.ClassDef, ast.arg, ast.Global, ast.Nonlocal, ast.ExceptHandler,
                      ast.Delete})


def _build_scope(tree: ast.Module, filename: str) -> Scope:
    scope = Scope(filename)
    counts = scope.counts
    conflicts: set[str] = set()

    def alias(name: str, target: str) -> None:
        if scope.aliases.get(name, target) != target:
            conflicts.add(name)  # one name imported as two different things: trust neither
        scope.aliases[name] = target

    for node in walk(tree):
        if node.__class__ not in _BINDERS:  # most nodes bind nothing: one set lookup instead of ten isinstance
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    alias(a.asname, a.name)
                else:
                    top = a.name.split(".")[0]
                    alias(top, top)
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if node.module and not node.level:
                    alias(a.asname or a.name, f"{node.module}.{a.name}")
                else:
                    conflicts.add(a.asname or a.name)  # relative import: unknown object
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in walk(t):
                    if isinstance(sub, ast.Name):
                        counts[sub.id] = counts.get(sub.id, 0) + (2 if isinstance(node, ast.AugAssign) else 1)
                        if isinstance(t, ast.Name) and node.value is not None:
                            scope.bindings[sub.id] = node.value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            for sub in walk(node.target):
                if isinstance(sub, ast.Name):
                    counts[sub.id] = counts.get(sub.id, 0) + 2
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name):
                    name = item.optional_vars.id
                    counts[name] = counts.get(name, 0) + 1
                    scope.bindings[name] = item.context_expr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            counts[node.name] = counts.get(node.name, 0) + 2
        elif isinstance(node, ast.arg):
            counts[node.arg] = counts.get(node.arg, 0) + 2
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                counts[name] = counts.get(name, 0) + 2
        elif isinstance(node, ast.ExceptHandler) and node.name:
            counts[node.name] = counts.get(node.name, 0) + 2
        elif isinstance(node, (ast.Delete)):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    counts[t.id] = counts.get(t.id, 0) + 2
    for name in conflicts:
        scope.aliases.pop(name, None)
        counts[name] = counts.get(name, 0) + 2
    for name, n in counts.items():
        if n != 1 or name in scope.aliases:  # bound twice, or both imported and assigned: order decides
            scope.bindings.pop(name, None)
            scope.aliases.pop(name, None)
    return scope


def _with(r: Resolved, value: Any, layer: str | None = None) -> Resolved:
    return Resolved(value, r.layers + ((layer,) if layer else ()))


class Evaluator:
    """Resolve an expression to a concrete value, or raise Unresolvable."""

    def __init__(self, scope: Scope, limits: Limits, spend: Spend | None = None):
        self.scope = scope
        self.limits = limits
        self.spend = spend or Spend()

    def eval(self, node: ast.expr) -> Resolved:
        try:
            return self._eval(node)
        except RecursionError:
            raise Unresolvable("expression nested too deeply") from None

    def _eval(self, node: ast.expr) -> Resolved:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, bytes, int, float, bool)) or node.value is None:
                return Resolved(node.value)
            raise Unresolvable("constant")
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._eval(node.operand)
            if isinstance(inner.value, (int, float)) and not isinstance(inner.value, bool):
                return _with(inner, -inner.value)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self._eval(e) for e in node.elts]
            return Resolved([i.value for i in items], sum((i.layers for i in items), ()))
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise Unresolvable("dict unpacking")
            keys = [self._eval(k).value for k in node.keys]  # type: ignore[arg-type]
            values = [self._eval(v).value for v in node.values]
            try:
                return Resolved(dict(zip(keys, values)))
            except TypeError:
                raise Unresolvable("unhashable key") from None
        raise Unresolvable(type(node).__name__)

    def _name(self, name: str) -> Resolved:
        if name in self.scope.counts and name not in self.scope.bindings:
            raise Unresolvable(f"{name} is rebound")
        if name == "__file__" and name not in self.scope.bindings:
            return Resolved(self.scope.filename)
        if name in self.scope.bindings:
            known = self.scope.memo.get(name)
            if isinstance(known, Exception):
                raise known
            if known is not None:
                return known
            if name in self.scope.resolving:
                raise Unresolvable(f"{name} refers to itself")
            self.scope.resolving.add(name)
            try:
                result = self._eval(self.scope.bindings[name])
            except (Unresolvable, UnpackError) as exc:
                self.scope.memo[name] = exc
                raise
            finally:
                self.scope.resolving.discard(name)
            self.scope.memo[name] = result
            return result
        if name in self.scope.aliases:
            return Resolved(self._qual(self.scope.aliases[name]))
        if name in ("exec", "eval", "compile", "open", "bytes", "str", "bytearray", "__import__"):
            return Resolved(Func(name))
        raise Unresolvable(f"name {name}")

    @staticmethod
    def _qual(dotted: str) -> Any:
        module, _, last = dotted.rpartition(".")
        if module in MODULE_CONSTANTS and last.startswith(MODULE_CONSTANTS[module]):
            imported = {"lzma": lzma, "zlib": zlib}[module]
            if hasattr(imported, last):
                return Const(getattr(imported, last))
        if dotted in DECODERS or dotted in DECOMPRESSORS or dotted in _OTHER_FUNCS:
            return Func(dotted)
        return Module(dotted)

    def _attribute(self, node: ast.Attribute) -> Resolved:
        base = self._eval(node.value)
        value = base.value
        if isinstance(value, Module):
            return _with(base, self._qual(f"{value.name}.{node.attr}"))
        if isinstance(value, PathVal) and node.attr == "parent":
            return _with(base, PathVal(posixpath.dirname(value.path)))
        if isinstance(value, (str, bytes, PathVal, OpenFile, DecompObj)):
            return _with(base, ("method", value, node.attr))
        if isinstance(value, Func) and value.qualname == "bytes" and node.attr == "fromhex":
            return _with(base, Func("bytes.fromhex"))
        raise Unresolvable(f"attribute {node.attr}")

    def _binop(self, node: ast.BinOp) -> Resolved:
        left, right = self._eval(node.left), self._eval(node.right)
        lv, rv = left.value, right.value
        layers = left.layers + right.layers
        if isinstance(node.op, ast.Add) and type(lv) is type(rv) and isinstance(lv, (str, bytes)):
            if len(lv) + len(rv) > self.limits.max_output:
                raise UnpackError("bomb", f"string concatenation over {self.limits.max_output} bytes")
            self.spend.charge(len(lv) + len(rv), self.limits)
            return Resolved(lv + rv, layers)
        if isinstance(node.op, ast.Div) and isinstance(lv, PathVal) and isinstance(rv, str):
            return Resolved(PathVal(posixpath.join(lv.path, rv)), layers)
        if isinstance(node.op, ast.BitOr):
            a = lv.value if isinstance(lv, Const) else lv
            b = rv.value if isinstance(rv, Const) else rv
            if isinstance(a, int) and isinstance(b, int):
                return Resolved(a | b, layers)
        raise Unresolvable("operator")

    def _call(self, node: ast.Call) -> Resolved:
        func = self._eval(node.func)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise Unresolvable("star arguments")
        args = [self._eval(a) for a in node.args]
        kwargs = {k.arg: self._eval(k.value) for k in node.keywords if k.arg}
        layers = func.layers + sum((a.layers for a in args), ()) + sum((v.layers for v in kwargs.values()), ())
        av = [_plain(a.value) for a in args]
        kv = {k: _plain(v.value) for k, v in kwargs.items()}
        fv = func.value
        if isinstance(fv, tuple) and fv[0] == "method":
            value, layer = self._method(fv[1], fv[2], av, kv)
        elif isinstance(fv, Func):
            value, layer = self._function(fv.qualname, av, kv)
        else:
            raise Unresolvable("call of an unknown function")
        return Resolved(value, layers + ((layer,) if layer else ()))

    # -- whitelisted functions ------------------------------------------------------------------
    def _function(self, qual: str, av: list, kv: dict) -> tuple[Any, str | None]:
        if qual in DECODERS:
            layer, fn = DECODERS[qual]
            data = _first(av, kv, ("s", "b", "string", "data", "hexstr"))
            if isinstance(data, str) and qual != "bytes.fromhex":
                data = data.encode("ascii", errors="strict") if data.isascii() else None
            if not isinstance(data, (bytes, bytearray, str)):
                raise Unresolvable(f"{qual} of a non-literal")
            try:
                return fn(data), layer
            except (ValueError, binascii.Error, TypeError) as exc:
                raise UnpackError("unreadable", f"{qual}: invalid {layer} data ({exc})") from None
        if qual in DECOMPRESSORS:
            layer = DECOMPRESSORS[qual]
            data = _first(av, kv, ("data",))
            if not isinstance(data, (bytes, bytearray)):
                raise Unresolvable(f"{qual} of a non-literal")
            params: dict[str, Any] = {}
            if layer == "lzma":
                fmt = kv.get("format", av[1] if len(av) > 1 else lzma.FORMAT_AUTO)
                filters = kv.get("filters", av[3] if len(av) > 3 else None)
                params = {"format": fmt, "filters": filters}
                layer = {lzma.FORMAT_RAW: "lzma-raw", lzma.FORMAT_XZ: "xz", lzma.FORMAT_ALONE: "lzma-alone"}.get(
                    fmt, "xz" if bytes(data[:6]) == b"\xfd7zXZ\x00" else "lzma")
            elif layer == "zlib":
                wbits = kv.get("wbits", av[1] if len(av) > 1 else 15)
                params = {"wbits": wbits}
                if isinstance(wbits, int) and wbits > 15:
                    layer = "gzip" if wbits >= 31 else "zlib"
            return decompress(layer, bytes(data), self.limits, self.spend, **params), layer
        if qual in ("__import__", "importlib.import_module") and av and isinstance(av[0], str):
            return Module(av[0]), None
        if qual in DECOMPRESSOR_OBJECTS:
            layer = DECOMPRESSOR_OBJECTS[qual]
            params: dict[str, Any] = {}
            if layer == "zlib":
                params["wbits"] = kv.get("wbits", av[0] if av else 15)
                if isinstance(params["wbits"], int) and 25 <= params["wbits"] <= 31:
                    layer = "gzip"
            elif layer == "lzma":
                params["format"] = kv.get("format", av[0] if av else lzma.FORMAT_AUTO)
                params["filters"] = kv.get("filters", av[2] if len(av) > 2 else None)
                layer = {lzma.FORMAT_RAW: "lzma-raw", lzma.FORMAT_XZ: "xz",
                         lzma.FORMAT_ALONE: "lzma-alone"}.get(params["format"], "lzma")
            try:
                hash(tuple(params.items()))
            except TypeError:  # filters is a list: keep it as a tuple of tuples of its dicts
                params["filters"] = tuple(tuple(sorted(f.items())) if isinstance(f, dict) else f
                                          for f in params["filters"])
            return DecompObj(layer, tuple(params.items())), None
        if qual == "codecs.decode":
            data = _first(av, kv, ("obj",))
            enc = kv.get("encoding", av[1] if len(av) > 1 else "utf-8")
            return self._codecs(data, enc)
        if qual in ("bytes", "bytearray", "str") and len(av) >= 2 and isinstance(av[1], str):
            if qual == "str" and isinstance(av[0], (bytes, bytearray)):
                return _decode_text(av[0], av[1]), None
            if qual != "str" and isinstance(av[0], str):
                return av[0].encode(av[1]), None
        if qual in ("bytes", "bytearray") and len(av) == 1 and isinstance(av[0], (bytes, bytearray)):
            return bytes(av[0]), None
        if qual == "compile":
            src = _first(av, kv, ("source",))
            if isinstance(src, (str, bytes, FileRead)):
                return Code(src), None
        if qual == "open" or qual in ("io.open", "builtins.open"):
            path = _first(av, kv, ("file",))
            mode = kv.get("mode", av[1] if len(av) > 1 else "r")
            if isinstance(path, PathVal):
                path = path.path
            if isinstance(path, str) and isinstance(mode, str):
                return OpenFile(path, "b" in mode), None
        if qual in ("pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath") and len(av) >= 1:
            parts = [p.path if isinstance(p, PathVal) else p for p in av]
            if all(isinstance(p, str) for p in parts):
                return PathVal(posixpath.join(*parts)), None
        if qual == "os.path.join" and av and all(isinstance(p, str) for p in av):
            return posixpath.join(*av), None
        if qual == "os.path.dirname" and len(av) == 1 and isinstance(av[0], str):
            return posixpath.dirname(av[0]), None
        if qual in ("os.path.abspath", "os.path.realpath", "os.path.normpath", "os.fspath") and len(av) == 1:
            if isinstance(av[0], (str, PathVal)):
                return av[0], None
        raise Unresolvable(f"call of {qual}")

    def _codecs(self, data: Any, enc: Any) -> tuple[Any, str | None]:
        if not isinstance(enc, str):
            raise Unresolvable("codecs.decode with a dynamic encoding")
        key = enc.lower().replace("-", "_")
        if key in CODECS_BINARY:
            layer = CODECS_BINARY[key]
            if isinstance(data, str):
                data = data.encode("ascii", errors="replace")
            if not isinstance(data, (bytes, bytearray)):
                raise Unresolvable("codecs.decode of a non-literal")
            if layer in ("zlib", "bz2"):
                return decompress(layer, bytes(data), self.limits, self.spend), layer
            try:
                return codecs.decode(bytes(data), key), layer
            except (ValueError, binascii.Error) as exc:
                raise UnpackError("unreadable", f"codecs.decode: invalid {layer} data ({exc})") from None
        if key in ("rot13", "rot_13") and isinstance(data, str):
            return codecs.decode(data, "rot13"), "rot13"
        if isinstance(data, (bytes, bytearray)):
            return _decode_text(data, enc), None
        raise Unresolvable("codecs.decode")

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_output:
            raise UnpackError("bomb", f"string operation over {self.limits.max_output} bytes")
        self.spend.charge(size, self.limits)

    def _method(self, obj: Any, name: str, av: list, kv: dict) -> tuple[Any, str | None]:
        if isinstance(obj, (bytes, bytearray)) and name == "decode":
            return _decode_text(obj, kv.get("encoding", av[0] if av else "utf-8")), None
        if isinstance(obj, str) and name == "encode":
            enc = kv.get("encoding", av[0] if av else "utf-8")
            try:
                return obj.encode(enc), None
            except (LookupError, UnicodeError, TypeError):
                raise Unresolvable("str.encode") from None
        if isinstance(obj, (str, bytes)) and name in ("replace", "strip", "lstrip", "rstrip", "join"):
            if all(isinstance(a, type(obj)) for a in av) or (name == "join" and av and isinstance(av[0], list)):
                self._check_size(_result_size(obj, name, av))
                try:
                    return getattr(obj, name)(*av), None
                except TypeError:
                    raise Unresolvable(f"{name}") from None
        if isinstance(obj, OpenFile) and name == "read" and not av:
            return FileRead(obj.path, obj.binary), None
        if isinstance(obj, PathVal):
            if name in ("read_text", "read_bytes"):
                return FileRead(obj.path, name == "read_bytes"), None
            if name == "with_name" and av and isinstance(av[0], str):
                return PathVal(posixpath.join(posixpath.dirname(obj.path), av[0])), None
            if name in ("resolve", "absolute"):
                return obj, None
            if name == "joinpath" and all(isinstance(a, str) for a in av):
                return PathVal(posixpath.join(obj.path, *av)), None
        if isinstance(obj, DecompObj) and name in ("decompress", "process") and av \
                and isinstance(av[0], (bytes, bytearray)):
            params = dict(obj.params)
            if isinstance(params.get("filters"), tuple):
                params["filters"] = [dict(f) if isinstance(f, tuple) else f for f in params["filters"]]
            return decompress(obj.layer, bytes(av[0]), self.limits, self.spend, **params), obj.layer
        raise Unresolvable(f"method {name}")


DECOMPRESSOR_OBJECTS = {
    "zstandard.ZstdDecompressor": "zstd", "zstd.ZstdDecompressor": "zstd", "zlib.decompressobj": "zlib",
    "lzma.LZMADecompressor": "lzma", "bz2.BZ2Decompressor": "bz2", "brotli.Decompressor": "brotli",
}
_OTHER_FUNCS = {*DECOMPRESSOR_OBJECTS, "importlib.import_module", "codecs.decode", "pathlib.Path",
                "pathlib.PurePath", "pathlib.PosixPath", "os.path.join", "os.path.dirname", "os.path.abspath",
                "os.path.realpath", "os.path.normpath", "os.fspath", "io.open", "builtins.open"}


def _result_size(obj: str | bytes, name: str, av: list) -> int:
    """An upper bound on the length of obj.<name>(*av), computed without building it."""
    if name == "replace" and len(av) >= 2:
        old, new = av[0], av[1]
        count = obj.count(old) if old else len(obj) + 1
        if len(av) > 2 and isinstance(av[2], int) and av[2] >= 0:
            count = min(count, av[2])
        return len(obj) + count * max(0, len(new) - len(old))
    if name == "join" and av and isinstance(av[0], list):
        items = av[0]
        return sum(len(i) if isinstance(i, (str, bytes)) else 0 for i in items) + len(obj) * max(0, len(items) - 1)
    return len(obj)


def _plain(value: Any) -> Any:
    """Unwrap module constants (lzma.FORMAT_RAW) and lists/dicts holding them."""
    if isinstance(value, Const):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _first(av: list, kv: dict, names: tuple[str, ...]) -> Any:
    if av:
        return av[0]
    for n in names:
        if n in kv:
            return kv[n]
    raise Unresolvable("missing argument")


def _decode_text(data: bytes | bytearray, enc: Any) -> str:
    if not isinstance(enc, str):
        raise Unresolvable("dynamic encoding")
    try:
        return bytes(data).decode(enc)
    except LookupError:
        raise Unresolvable(f"unknown encoding {enc}") from None
    except UnicodeDecodeError as exc:
        raise UnpackError("unreadable", f"decoded code is not valid {enc} at byte {exc.start}") from None


# -- exec sites ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExecSite:
    """One `exec`/`eval` (or `exec(compile(...))`) call and what it runs.

    kind: "code" (text holds the decoded source), "file" (path holds the file it reads; relative paths
    are as written, `__file__` replaced by the file's folder-relative name), "dynamic" (unresolvable),
    or "error" (decoding failed: `error_kind` is "bomb" or "unreadable", message in `text`).
    """
    line: int
    kind: str
    text: str = ""
    path: str = ""
    layers: tuple[str, ...] = ()
    error_kind: str = ""
    func: str = "exec"


EXEC_FUNCS = {"exec", "eval", "builtins.exec", "builtins.eval"}


def _exec_name(node: ast.Call, scope: Scope) -> str | None:
    """"exec"/"eval" when the call runs one of them: directly, via builtins/__builtins__, a name bound once to
    it (`E = exec`), or getattr(builtins, "exec")."""
    f: ast.expr = node.func
    for _ in range(8):  # follow `E = exec` style bindings a few steps
        if isinstance(f, ast.Name) and f.id in ("exec", "eval") and f.id in scope.counts:
            return f"{f.id}:rebound"  # maybe only on some paths: the builtin may still run
        if isinstance(f, ast.Name) and f.id in scope.bindings:
            f = scope.bindings[f.id]
        else:
            break
    if isinstance(f, ast.Name) and f.id in ("exec", "eval"):
        return f"{f.id}:rebound" if f.id in scope.counts else f.id
    if isinstance(f, ast.Attribute) and f.attr in ("exec", "eval") and isinstance(f.value, ast.Name):
        if scope.aliases.get(f.value.id) == "builtins" or f.value.id == "__builtins__":
            return f.attr
    if isinstance(f, ast.Call) and isinstance(f.func, ast.Name) and f.func.id == "getattr" and len(f.args) >= 2:
        target, attr = f.args[0], f.args[1]
        if isinstance(attr, ast.Constant) and attr.value in ("exec", "eval") and isinstance(target, ast.Name) \
                and (scope.aliases.get(target.id) == "builtins" or target.id == "__builtins__"):
            return attr.value
    return None


def call_qualname(func: ast.expr, scope: Scope) -> str:
    """`lzma.decompress` for `L.decompress` after `import lzma as L`; '' when not a Name/Attribute chain."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return ""
    parts.append(scope.aliases.get(func.id, func.id))
    return ".".join(reversed(parts))


def _run_path_site(ev: Evaluator, node: ast.Call, line: int) -> ExecSite:
    try:
        value = ev.eval(node.args[0]).value
    except (Unresolvable, UnpackError) as exc:
        return ExecSite(line, "dynamic", text=str(exc), func="runpy.run_path")
    if isinstance(value, PathVal):
        value = value.path
    if isinstance(value, str):
        return ExecSite(line, "file", path=value, func="runpy.run_path")
    return ExecSite(line, "dynamic", text="path is not a string", func="runpy.run_path")


def find_exec_sites(tree: ast.Module, filename: str, limits: Limits | None = None,
                    spend: Spend | None = None) -> list[ExecSite]:
    """Every exec/eval call of the file, resolved as far as statics allow (`spend`: a bundle-wide budget)."""
    limits = limits or Limits()
    scope = build_scope(tree, filename)
    ev = Evaluator(scope, limits, spend)
    sites = []
    for node in walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fname = _exec_name(node, scope)
        if fname is None and call_qualname(node.func, scope) == "runpy.run_path":
            fname = "runpy.run_path"
        if fname is None or not node.args:
            continue
        line = node.lineno
        if fname.endswith(":rebound"):
            fname = fname.split(":")[0]
            sites.append(ExecSite(line, "dynamic", text=f"{fname} is rebound in this file", func=fname))
            continue
        if fname == "runpy.run_path":
            sites.append(_run_path_site(ev, node, line))
            continue
        try:
            r = ev.eval(node.args[0])
        except Unresolvable as exc:
            sites.append(ExecSite(line, "dynamic", text=str(exc), func=fname))
            continue
        except UnpackError as exc:
            sites.append(ExecSite(line, "error", text=exc.message, error_kind=exc.kind, func=fname))
            continue
        value = r.value
        if isinstance(value, Code):
            value = value.source
        elif fname == "eval":
            continue  # eval of a plain expression string is not hidden code
        if isinstance(value, FileRead):
            sites.append(ExecSite(line, "file", path=value.path, layers=r.layers, func=fname))
        elif isinstance(value, (bytes, bytearray)):
            try:
                text = _decode_text(value, "utf-8")
            except UnpackError as exc:
                sites.append(ExecSite(line, "error", text=exc.message, error_kind=exc.kind, func=fname))
                continue
            sites.append(ExecSite(line, "code", text=text, layers=r.layers, func=fname))
        elif isinstance(value, str):
            sites.append(ExecSite(line, "code", text=value, layers=r.layers, func=fname))
        else:
            sites.append(ExecSite(line, "dynamic", text=f"exec of a {type(value).__name__}", func=fname))
    sites.sort(key=lambda s: s.line)
    return sites


def is_wrapper(tree: ast.Module, site_lines: set[int], filename: str = "<string>") -> bool:
    """True when the module does nothing but import, bind constants or decoded data, and exec resolved code."""
    scope = build_scope(tree, filename)

    def harmless_call(call: ast.Call) -> bool:
        if call.lineno in site_lines:
            return True
        try:
            func = Evaluator(scope, Limits())._eval(call.func).value
        except (Unresolvable, UnpackError, RecursionError):
            return False
        return isinstance(func, Func) and (func.qualname in DECODERS or func.qualname in DECOMPRESSORS)

    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and stmt.value.lineno in site_lines:
            continue
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            calls = [n for n in walk(stmt.value) if isinstance(n, ast.Call)]
            if all(harmless_call(c) for c in calls):
                continue
        return False
    return bool(site_lines)
