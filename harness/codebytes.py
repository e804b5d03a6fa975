"""Code bytes of a submission (EVAL_INTERNALS §4), each number with where it came from.

- `raw`: bytes on disk of the shipped script(s), plus every folder file the script runs: siblings it
  `exec`s (04-06_HessianSDClip: a 74-byte train_gpt.py runs train_gpt_decode.py), Python modules it imports
  from its folder (harness.codeload), and C/C++/CUDA sources it compiles or loads (harness.nativecode);
- `packed`: from 2026-04-10 on, records count a minified, lzma (or brotli) + base85 self-extracting form;
  we rebuild that form the way they do (python_minifier, no renaming, no hoisting, literal statements
  removed) and use it only when it matches what the logs printed (within `PACKED_TOLERANCE`);
- `logged`: what the logs counted (`Code size: N bytes` / `Code size (compressed): N bytes`).

`binding` names the count that applies to the cap: `packed` when the logs count the packed form and we
reproduce it (plus the raw bytes of the other files the script runs), else `raw`. A script shipped already
packed (`exec(lzma.decompress(b85decode(...)))` in the file itself, `shipped_packed`) weighs its bytes on disk,
whatever a log printed for the unpacked code it ran. Nothing here runs submission code.
"""

from __future__ import annotations

import base64
import lzma
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.codeload import load_code
from harness.nativecode import find_native_sources
from harness.report import Measured
from harness.submission import LoadError, Submission

if TYPE_CHECKING:  # pragma: no cover
    from harness.codeload import CodeBundle

# python_minifier versions differ slightly; the 04-xx logs and our rebuild agree to well under 1%.
PACKED_TOLERANCE = 0.01
LZMA_WRAPPER = (b'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("', b'")))\n')
BROTLI_WRAPPER = (b'import brotli as B,base64 as A\nexec(B.decompress(A.b85decode("', b'")))\n')
BROTLI_PACKER = re.compile(r"import brotli as B,base64 as \w|brotli\.compress\(\s*minified")
EXEC_LINE = re.compile(r"^.*\bexec\s*\(.*$", re.M)
PY_LITERAL = re.compile(r"""["']([\w\-./]+\.py)["']""")
SELF_EXTRACTING = re.compile(r"exec\(\s*\w+\.decompress\(\s*\w+\.b(?:85|64)decode\(")
# A log that counts fewer code bytes than the shipped file may count the packed form without saying so; it
# does when golfaudit's rebuild of that form comes within UNLABELLED_TOLERANCE of the count (minifier versions).
SMALLER_COUNT = 0.9
UNLABELLED_TOLERANCE = 0.05
WRAPPER_LINES = 5           # a self-extracting wrapper is a few lines around one literal


@dataclass(frozen=True)
class CodeBytes:
    raw: int
    files: tuple[str, ...]
    logged: tuple[int, ...] = ()            # distinct code counts printed by the logs
    logged_packed: bool = False             # the logs count a compressed self-extracting form
    packed: dict[str, int] = field(default_factory=dict)   # compressor → wrapper length we rebuilt
    packed_error: str | None = None
    reproduced: str | None = None           # the compressor whose rebuild matches the logs
    binding: str = "raw"                    # raw | packed
    shipped_packed: bool = False            # the shipped script is itself a self-extracting wrapper
    helpers: tuple[str, ...] = ()           # files[1:]: what the script imports, execs or compiles
    added: tuple[str, ...] = ()             # those of them it does not exec (imported modules, native sources)
    added_bytes: int = 0                    # their bytes on disk

    @property
    def binding_bytes(self) -> int:
        if self.binding == "packed" and self.reproduced:
            return self.packed[self.reproduced] + self.added_bytes
        return self.raw


def exec_siblings(sub: Submission, name: str, text: str) -> list[str]:
    """Sibling .py files that `name` runs with exec(open(...)) — their bytes are code too."""
    out: list[str] = []
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    for line in EXEC_LINE.finditer(text):
        for m in PY_LITERAL.finditer(line.group(0)):
            candidate = folder + m.group(1).rsplit("/", 1)[-1]
            if candidate != name and candidate in sub.files and candidate not in out:
                out.append(candidate)
    return out


def run_files(sub: Submission, name: str, bundle: CodeBundle | None = None) -> list[str]:
    """Folder files the script `name` runs besides itself: Python modules it imports or execs (as followed by
    harness.codeload; `bundle` when already loaded) and native sources it compiles or loads
    (harness.nativecode)."""
    try:
        bundle = bundle if bundle is not None else load_code(sub, name)
    except Exception:  # noqa: BLE001 - an unloadable script counts alone; its loader problems are reported
        return []
    out: list[str] = []
    for unit in bundle.units:
        file = str(unit.name)
        if not file.endswith(")") and file != name and file in sub.files and file not in out:
            out.append(file)
    out += [s.file for s in find_native_sources(sub, list(bundle.units))
            if s.counted and s.file in sub.files and s.file not in out and s.file != name]
    return out


def packer_of(source: str) -> str:
    """Which wrapper the script builds when it measures itself: brotli if it says so, else lzma."""
    return "brotli" if BROTLI_PACKER.search(source) else "lzma"


def minify_like_records(source: str) -> str:
    """`python_minifier.minify(source, rename_locals=False, hoist_literals=False, remove_literal_statements=True)`,
    the records' own call, built from python-minifier's own passes minus two that cannot change the text here:
    the renaming pass (renaming is off, so it renames nothing) and `unparse`'s self-check (a re-parse and
    tree comparison). Same output, about 30% less time (~1 s per 120 KB script on one core);
    tests/test_codebytes.py checks equality against `minify` itself."""
    from python_minifier import ast_compat
    from python_minifier.ast_annotation import add_parent
    from python_minifier.module_printer import ModulePrinter
    from python_minifier.rename import add_namespace, bind_names, resolve_names
    from python_minifier.transforms.combine_imports import CombineImports
    from python_minifier.transforms.constant_folding import FoldConstants
    from python_minifier.transforms.remove_annotations import RemoveAnnotations
    from python_minifier.transforms.remove_annotations_options import RemoveAnnotationsOptions
    from python_minifier.transforms.remove_dead_branches import RemoveDeadBranches
    from python_minifier.transforms.remove_exception_brackets import remove_no_arg_exception_call
    from python_minifier.transforms.remove_explicit_return_none import RemoveExplicitReturnNone
    from python_minifier.transforms.remove_literal_statements import RemoveLiteralStatements
    from python_minifier.transforms.remove_object_base import RemoveObject
    from python_minifier.transforms.remove_pass import RemovePass
    from python_minifier.transforms.remove_posargs import remove_posargs

    module = ast_compat.parse(source, "python_minifier.minify source")
    add_parent(module)
    add_namespace(module)
    for transform in (RemoveLiteralStatements(), CombineImports(), RemoveAnnotations(RemoveAnnotationsOptions()),
                      RemovePass(), RemoveObject(), FoldConstants(), RemoveDeadBranches(),
                      RemoveExplicitReturnNone()):
        module = transform(module)
    bind_names(module)
    resolve_names(module)
    if not module.tainted:
        remove_no_arg_exception_call(module)
    module = remove_posargs(module)
    printer = ModulePrinter(prefer_single_line=False)
    printer(module)
    shebang = re.match(r"^#!.*", source)
    return (shebang.group() + "\n" + printer.code) if shebang else printer.code


def packed_size(source: str, packer: str = "lzma") -> int:
    """Length of the records' self-extracting wrapper around the minified source."""
    try:
        minified = minify_like_records(source).encode("utf-8")
    except ImportError:  # python-minifier moved its internals: use its public call
        import python_minifier

        minified = python_minifier.minify(source, rename_locals=False, hoist_literals=False,
                                          remove_literal_statements=True).encode("utf-8")
    if packer == "brotli":
        import brotli

        body = base64.b85encode(brotli.compress(minified, quality=11))
        return len(BROTLI_WRAPPER[0] + body + BROTLI_WRAPPER[1])
    return len(LZMA_WRAPPER[0] + base64.b85encode(lzma.compress(minified)) + LZMA_WRAPPER[1])


def code_bytes(sub: Submission, main: CodeBundle | None = None) -> CodeBytes | None:
    """What the shipped code weighs, and which count binds (None when there is no script). `main`: the first
    script's code bundle when already loaded.

    An audit computes it once (`AuditContext.code_bytes`): the minifier takes a second or two on a 150 KB
    script."""
    names = list(sub.script_names)
    if not names:
        return None
    texts: dict[str, str] = {}
    groups: list[list[str]] = []
    execed: set[str] = set()
    for name in names:
        group = [name]
        try:
            texts[name] = sub.read_source(name)
            group += exec_siblings(sub, name, texts[name])
            execed.update(group)
            group += [f for f in run_files(sub, name, main if name == names[0] else None) if f not in group]
        except LoadError:
            pass
        groups.append(group)
    # several alternative scripts (e.g. one per experiment): the heaviest one is what could count
    files = max(groups, key=lambda g: sum(sub.size(n) for n in g))
    raw = sum(sub.size(n) for n in files)
    logged = tuple(sorted({log.code_bytes.value for log in sub.logs if log.code_bytes is not None}))
    logged_packed = any(log.code_bytes_uncompressed is not None for log in sub.logs)
    helpers = tuple(files[1:])
    added = tuple(n for n in helpers if n not in execed)
    added_bytes = sum(sub.size(n) for n in added)
    if len(names) == 1 and names[0] in texts and SELF_EXTRACTING.search(texts[names[0]]) \
            and sum(1 for line in texts[names[0]].splitlines() if line.strip()) <= WRAPPER_LINES:
        return CodeBytes(raw, tuple(files), logged, logged_packed, shipped_packed=True, helpers=helpers,
                         added=added, added_bytes=added_bytes)
    counts_less = any(value < (raw - added_bytes) * SMALLER_COUNT for value in logged)
    if not (logged_packed or counts_less) or len(names) != 1 or names[0] not in texts:
        return CodeBytes(raw, tuple(files), logged, logged_packed, helpers=helpers, added=added,
                         added_bytes=added_bytes)
    try:
        packer = packer_of(texts[names[0]])
        packed = {packer: packed_size(texts[names[0]], packer)}
        error = None
    except Exception as exc:  # noqa: BLE001 - the minifier may reject odd code; report, don't crash
        packed, error = {}, f"could not minify {names[0]}: {type(exc).__name__}: {exc}"
    reproduced = None
    best = None
    tolerance = PACKED_TOLERANCE if logged_packed else UNLABELLED_TOLERANCE
    for kind, size in packed.items():
        for value in logged:
            gap = abs(size - value) / max(value, 1)
            if gap <= tolerance and (best is None or gap < best):
                best, reproduced = gap, kind
    return CodeBytes(raw, tuple(files), logged, logged_packed or reproduced is not None, packed, error, reproduced,
                     "packed" if reproduced else "raw", helpers=helpers, added=added, added_bytes=added_bytes)


@dataclass(frozen=True)
class SeedSize:
    log: object
    model: int | None
    logged_total: int | None
    code_counted: int
    total: int                 # the larger of the log's own total and model + the code that counts
    rounded: bool

    @property
    def shipped(self) -> int | None:
        """Model bytes + the shipped code as the log's own counting rule counts it: what the artifact weighs."""
        return self.model + self.code_counted if self.model is not None else None


def seed_sizes(sub: Submission, cb: CodeBytes | None) -> list[SeedSize]:
    """Per log with size lines: the log's own total, and model + the shipped code as it counts (`cb`)."""
    out = []
    for log in sub.logs:
        if log.total_bytes is None and log.model_bytes is None:
            continue
        logged_total = log.total_bytes.value if log.total_bytes is not None else None
        model = None
        if logged_total is not None and log.code_bytes is not None and "rounded" not in log.total_bytes_format:
            model = logged_total - log.code_bytes.value
        elif log.model_bytes is not None and "Serialized model:" not in log.model_bytes.text:
            model = log.model_bytes.value       # `Serialized model <format>: N bytes` is the compressed blob
        code = cb.binding_bytes if cb is not None else (log.code_bytes.value if log.code_bytes else 0)
        candidates = [v for v in (logged_total, model + code if model is not None else None) if v is not None]
        if not candidates:          # only the uncompressed `Serialized model:` line: no artifact size
            continue
        out.append(SeedSize(log, model, logged_total, code, max(candidates),
                            "rounded" in log.total_bytes_format))
    return out


def code_bytes_report(cb: CodeBytes | None) -> dict[str, Any]:
    """measured["code"]: raw and packed counts, what the logs printed, and which one binds."""
    if cb is None:
        return {}
    out: dict[str, Any] = {
        "raw": Measured(cb.raw, "file", "bytes on disk of " + " + ".join(cb.files)),
    }
    for kind, size in cb.packed.items():
        out[f"packed_{kind}"] = Measured(size, "computed", "minified + " + kind + " + base85 wrapper, rebuilt")
    if cb.logged:
        out["logged"] = Measured(list(cb.logged), "log",
                                 "compressed form" if cb.logged_packed else "as the logs count it")
    if cb.packed_error:
        out["packed_error"] = cb.packed_error
    out["binding"] = cb.binding
    out["binding_bytes"] = cb.binding_bytes
    return out
