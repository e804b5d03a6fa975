"""Native code a submission compiles or loads: C, C++ and CUDA sources (and prebuilt libraries) in its folder.

A Python unit of the submission's code that builds or loads native code (`torch.utils.cpp_extension.load`,
`load_inline`, `ctypes.CDLL`, a `subprocess` run of `nvcc`/`g++`/`gcc`, a `setup.py` build) and names a
folder file with a native suffix (`"fused_expert_kernel.cpp"`, `_DIR / "online_ngram_state.c"`) makes that
file part of the submission: its bytes are code bytes, and the rules cannot read it. Local `#include "x.h"`
files of a source count too. `load_inline` sources written as string literals are already inside the Python
file's bytes; they are listed (`inline`, at the literal's line) so the rules can ask for a review of them.

`subjects` says what a native source implements, from the words in it: `cache` (n-gram counts, hash tables,
mixers: the subject of NGRAM-CACHE) and `scorer` (log-probabilities, NLL, softmax). Nothing is compiled.
"""

from __future__ import annotations

import ast
import posixpath
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.astwalk import walk

if TYPE_CHECKING:  # pragma: no cover
    from harness.context import AuditContext

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".cuh", ".h", ".hh", ".hpp")
LIBRARY_SUFFIXES = (".so", ".dylib", ".dll")
LANGUAGES = {".c": "C", ".h": "C/C++ header", ".cu": "CUDA", ".cuh": "CUDA header"}
BUILD_MARKERS = re.compile(r"cpp_extension|load_inline|ctypes|CDLL|cdll|\bnvcc\b|g\+\+|\bgcc\b|\bclang|"
                           r"build_ext|CUDAExtension|CppExtension|cffi|pybind11")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
CACHE_WORDS = re.compile(r"ngram|n_gram|mixer|\bppm\b|backoff|hash|count", re.I)
SCORER_WORDS = re.compile(r"\bnll\b|log_?prob|logits?\b|softmax|cross_entropy|log_softmax", re.I)
MAX_NATIVE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class NativeSource:
    file: str                     # folder path (inline: the Python file holding the literal)
    size: int                     # bytes (inline: length of the literal, already counted with its file)
    language: str
    by: str                       # where the Python code names it: "ngram_tilt.py:38"
    subjects: frozenset[str]
    inline: bool = False
    line: int = 1                 # inline: the literal's line

    @property
    def counted(self) -> bool:
        """A file of its own, whose bytes are not yet in any Python file's count."""
        return not self.inline

    def describe(self) -> str:
        if self.inline:
            return f"{self.file}:{self.line} (inline {self.language} for load_inline at {self.by})"
        return f"{self.file} ({self.language}, {self.size:,} bytes; built or loaded by {self.by})"


def native_sources(ctx: AuditContext) -> list[NativeSource]:
    """The native sources the submission's code builds or loads, found once per audit."""
    return ctx.derived(_native_of_context)


def _native_of_context(ctx: AuditContext) -> list[NativeSource]:
    return find_native_sources(ctx.submission, ctx.units)


def _language(name: str) -> str:
    suffix = "." + name.rsplit(".", 1)[-1].lower()
    if suffix in LIBRARY_SUFFIXES:
        return "shared library"
    return LANGUAGES.get(suffix, "C++")


def _subjects(text: str) -> frozenset[str]:
    out = set()
    cache = [m.group(0).lower() for m in CACHE_WORDS.finditer(text)]
    if any(w in ("ngram", "n_gram", "mixer", "ppm", "backoff") for w in cache) or (
            cache.count("hash") >= 3 and cache.count("count") >= 3):
        out.add("cache")
    if len(SCORER_WORDS.findall(text)) >= 2:
        out.add("scorer")
    return frozenset(out)


def _read(sub: Any, name: str) -> str:
    try:
        return sub.read_bytes(name, limit=MAX_NATIVE_BYTES).decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - an unreadable file is reported by RECORDS-FOLDER
        return ""


def find_native_sources(sub: Any, units: list) -> list[NativeSource]:
    """Native sources named by `units` (parsed code of `sub`) that build or load native code."""
    files = [n for n in getattr(sub, "files", {}) if n.lower().endswith(SOURCE_SUFFIXES + LIBRARY_SUFFIXES)]
    by_base: dict[str, list[str]] = {}
    for name in files:
        by_base.setdefault(posixpath.basename(name).lower(), []).append(name)
    found: dict[str, NativeSource] = {}
    for unit in units:
        if not BUILD_MARKERS.search(unit.text):
            continue
        unit_file = str(unit.name).split(" (")[0]
        folder = posixpath.dirname(unit_file)
        for node in walk(unit.tree):
            if isinstance(node, ast.Call) and _call_tail(node) == "load_inline":
                for kw in node.keywords:
                    if kw.arg in ("cpp_sources", "cuda_sources"):
                        for const in walk(kw.value):
                            if isinstance(const, ast.Constant) and isinstance(const.value, str) \
                                    and len(const.value) > 40:
                                key = f"{unit.name}:{const.lineno} (inline)"
                                found.setdefault(key, NativeSource(
                                    str(unit.name), len(const.value.encode()),
                                    "CUDA" if kw.arg == "cuda_sources" else "C++", f"{unit.name}:{node.lineno}",
                                    _subjects(const.value), inline=True, line=const.lineno))
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or len(node.value) > 300:
                continue
            for word in node.value.split():
                word = word.strip("'\",;()[]")
                if not word.lower().endswith(SOURCE_SUFFIXES + LIBRARY_SUFFIXES):
                    continue
                for name in _resolve(word, folder, by_base, files):
                    if name not in found:
                        found[name] = NativeSource(name, sub.size(name), _language(name),
                                                   f"{unit.name}:{node.lineno}", frozenset())
    # local includes of the sources found, then what each source implements
    queue = [n for n, s in found.items() if not s.inline]
    while queue:
        name = queue.pop()
        if name.lower().endswith(LIBRARY_SUFFIXES):
            continue
        text = _read(sub, name)
        found[name] = replace(found[name], subjects=_subjects(text))
        for inc in INCLUDE.findall(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), inc))
            if target in files and target not in found:
                found[target] = NativeSource(target, sub.size(target), _language(target), f"{name} (#include)",
                                             frozenset())
                queue.append(target)
    return sorted(found.values(), key=lambda s: (s.file, s.line))


def _call_tail(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _resolve(word: str, folder: str, by_base: dict[str, list[str]], files: list[str]) -> list[str]:
    """Folder files a string names: the path relative to the naming file's folder, else by file name."""
    rel = posixpath.normpath(posixpath.join(folder, word.lstrip("./") if word.startswith("./") else word))
    if rel in files:
        return [rel]
    return by_base.get(posixpath.basename(word).lower(), [])
