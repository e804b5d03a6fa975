"""Parse Python source into an `ast` tree, whatever Python the code was written for.

Why two parsers: `ast` of the running interpreter is ~10x faster than libcst (measured over the 83 `.py`
files of records/: ≈2.2 s with `ast`, ≈20 s with libcst), but an interpreter older than 3.12 rejects
PEP 701 f-strings (nested quotes) that several packed records use. So `ast.parse` runs first; only when it
raises SyntaxError does libcst (whose own parser reads 3.0–3.13 syntax) get the file. libcst then rewrites
each f-string (and each implicit concatenation holding one) into a call `__fstring__(expr, ...)` that keeps
every embedded expression (format specs included) on its own original line and keeps the f-string's line
count and parentheses, and `ast` parses that. Line numbers of every statement and name are those a 3.12
`ast.parse` gives (checked on the 5 packed records that need 3.12), so nothing falls to `needs-review`
merely because of syntax. Column offsets inside a rewritten f-string are not preserved.

libcst costs about a second per 50 KB, so it first gets only the top-level block around the line `ast`
rejects (from the last column-0 line before it to the next one after it); the splice is re-parsed by
`ast`, which either accepts the whole file or names the next failing line. Only when a block cannot be
rewritten on its own (a region boundary inside a multi-line string, say) does libcst get the whole file.
Results are memoised by (name, text): several rules ask for the same file.
"""

from __future__ import annotations

import ast
import re
from collections import OrderedDict
from dataclasses import dataclass

LIBCST_MAX_CHARS = 4 * 1024 * 1024


@dataclass
class ParseFailure(Exception):
    message: str
    line: int | None = None
    snippet: str = ""


@dataclass(frozen=True)
class Parsed:
    tree: ast.Module
    via: str  # "ast" or "libcst"


_MEMO: OrderedDict[tuple[str, str], Parsed | ParseFailure] = OrderedDict()
_MEMO_SIZE = 8
MAX_REGION_REWRITES = 50


def parse_source(text: str, name: str = "<string>") -> Parsed:
    """The `ast` tree of `text` (see the module docstring); ParseFailure when neither parser can read it."""
    key = (name, text)
    hit = _MEMO.get(key)
    if hit is None:
        try:
            hit = _parse_source(text, name)
        except ParseFailure as exc:
            hit = exc
        _MEMO[key] = hit
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    if isinstance(hit, ParseFailure):
        raise ParseFailure(hit.message, hit.line, hit.snippet)
    return hit


def _parse_source(text: str, name: str) -> Parsed:
    try:
        return Parsed(ast.parse(text, filename=name), "ast")
    except SyntaxError as first:
        if len(text) > LIBCST_MAX_CHARS:  # libcst needs ~15 s per MB: no fallback for giant files
            raise ParseFailure(f"{first.msg} (line {first.lineno}); {len(text)} characters is too large for the "
                               "Python 3.12 syntax fallback", first.lineno, (first.text or "").strip()[:200]) from None
        reason = _no_fallback_reason(text, first)
        if reason:
            raise ParseFailure(f"{first.msg} (line {first.lineno}); {reason}", first.lineno,
                               (first.text or "").strip()[:200]) from None
        regional = _rewrite_failing_regions(text, first, name)
        if regional is not None:
            return regional
        try:
            rewritten = _rewrite_fstrings_with_libcst(text)
        except ParseFailure:
            raise ParseFailure(f"{first.msg} (line {first.lineno})", first.lineno,
                               (first.text or "").strip()[:200]) from None
        try:
            return Parsed(ast.parse(rewritten, filename=name), "libcst")
        except SyntaxError as second:
            raise ParseFailure(f"{second.msg} (line {second.lineno})", second.lineno,
                               (second.text or "").strip()[:200]) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        raise ParseFailure(f"cannot be parsed: {type(exc).__name__}: {exc}") from None


FSTRING_PREFIX = re.compile(r"(?<![\w])(?:[rRbB]?[fF]|[fF][rR])['\"]")
BRACKETS = re.compile(r"[()\[\]{}]")
MAX_BRACKET_DEPTH = 200  # Python's own parser limit (3.11 and 3.12 alike)


def _no_fallback_reason(text: str, error: SyntaxError) -> str | None:
    """Why the libcst fallback must not run: it only helps with 3.12 f-strings, and libcst's native parser
    overflows the C stack (killing the interpreter) on nesting that `ast` refuses with a clean error."""
    if "too many nested" in (error.msg or ""):
        return "nesting deeper than Python's parser allows"
    if not FSTRING_PREFIX.search(text):
        return "no f-string, so newer-Python f-string syntax cannot be the cause"
    depth = peak = 0
    for match in BRACKETS.finditer(text):
        depth += 1 if match.group() in "([{" else -1
        if depth > peak:
            peak = depth
            if peak > MAX_BRACKET_DEPTH:
                return f"brackets nested more than {MAX_BRACKET_DEPTH} deep"
    return None


TOP_LEVEL = re.compile(r"[^\s#)\]}]")


def _rewrite_failing_regions(text: str, error: SyntaxError, name: str) -> Parsed | None:
    """Rewrite only the top-level blocks `ast` rejects, one at a time; None when that does not work out."""
    lines = text.splitlines(keepends=True)
    done: set[int] = set()
    for _ in range(MAX_REGION_REWRITES):
        if not error.lineno or not 1 <= error.lineno <= len(lines):
            return None
        start = error.lineno - 1
        while start > 0 and not TOP_LEVEL.match(lines[start]):
            start -= 1
        if start in done:
            return None  # the same block again: the boundary guess is wrong
        done.add(start)
        end = error.lineno
        while end < len(lines) and not TOP_LEVEL.match(lines[end]):
            end += 1
        region = "".join(lines[start:end])
        try:
            rewritten = _rewrite_fstrings_with_libcst(region)
        except ParseFailure:
            return None
        new = rewritten.splitlines(keepends=True)
        if len(new) != end - start:
            return None
        if region.endswith("\n") != rewritten.endswith("\n"):
            return None
        lines[start:end] = new
        try:
            return Parsed(ast.parse("".join(lines), filename=name), "libcst")
        except SyntaxError as again:
            error = again
        except (ValueError, RecursionError, MemoryError):
            return None
    return None


def _rewrite_fstrings_with_libcst(text: str) -> str:
    import libcst as cst

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise ParseFailure(str(exc).splitlines()[0], exc.raw_line) from None
    except (RecursionError, MemoryError) as exc:
        raise ParseFailure(type(exc).__name__) from None

    code_of = cst.Module([]).code_for_node

    def newlines(node) -> str:
        return "\n" * code_of(node).count("\n")

    def content(parts) -> str:
        """The call arguments for f-string parts: every embedded expression at its own line offset."""
        out = []
        for part in parts:
            if isinstance(part, cst.FormattedStringExpression):
                out.append(code_of(part.whitespace_before_expression) + code_of(part.expression)
                           + code_of(part.whitespace_after_expression) + ",")
                if part.equal is not None:
                    out.append(newlines(part.equal))
                if part.format_spec:
                    out.append(content(part.format_spec))
            else:
                out.append(newlines(part))
        return "".join(out)

    class FStringToCall(cst.CSTTransformer):
        """f"..{e}.." -> __fstring__(e, ...) spanning exactly the lines the f-string spanned."""

        def leave_FormattedString(self, original, updated):
            call = cst.parse_expression(f"__fstring__({content(updated.parts)})")
            return call.with_changes(lpar=updated.lpar, rpar=updated.rpar)

        def visit_ConcatenatedString(self, node) -> bool:
            return False  # its parts are rewritten in leave_ (a Call may not sit inside a ConcatenatedString)

        def leave_ConcatenatedString(self, original, updated):
            left, right = updated.left.visit(self), updated.right.visit(self)
            if isinstance(left, cst.Call) or isinstance(right, cst.Call):
                call = cst.parse_expression(f"__fstring__({code_of(left)},"
                                            f"{code_of(updated.whitespace_between)}{code_of(right)})")
                return call.with_changes(lpar=updated.lpar, rpar=updated.rpar)
            return updated

    try:
        return module.visit(FStringToCall()).code
    except Exception as exc:  # noqa: BLE001 - libcst raises several types on odd trees
        raise ParseFailure(f"libcst could not rewrite f-strings: {exc}") from None


FSTRING_PLACEHOLDER = re.compile(r"__fstring__")
