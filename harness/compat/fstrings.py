"""Run code written for Python >= 3.12 on an older interpreter: PEP 701 f-strings (quotes of the f-string's
own kind inside its expressions, `f"{", ".join(xs)}"`) rewritten as equivalent `str.format` calls.

    f"a {x!r:>{w}} b {y=}"   ->   ("a {!r:>{}} b y={!r}".format((x), (w), (y)))

Every literal part keeps its source text (escapes and doubled braces mean the same to `str.format`), each
expression becomes one parenthesised argument in the order `str.format` numbers its fields (a field before
the fields nested in its format spec), and nested f-strings are rewritten first. Only the eval adapter's
import uses this, and only after the interpreter has rejected the code.
"""

from __future__ import annotations


class RewriteError(Exception):
    """The code could not be parsed or rewritten (the message says why)."""


def downgrade_fstrings(text: str) -> str:
    """`text` with every f-string replaced by a `str.format` call computing the same string."""
    import libcst as cst

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise RewriteError(str(exc).splitlines()[0]) from None
    except (RecursionError, MemoryError) as exc:
        raise RewriteError(type(exc).__name__) from None
    code_of = cst.Module([]).code_for_node

    def fields(parts, args: list[str]) -> str:
        out = []
        for part in parts:
            if isinstance(part, cst.FormattedStringText):
                out.append(part.value)
                continue
            expr = code_of(part.expression)
            conversion = part.conversion
            if part.equal is not None:   # f"{x=}": the expression's text, '=', then repr unless told otherwise
                shown = (code_of(part.whitespace_before_expression) + expr
                         + code_of(part.whitespace_after_expression) + code_of(part.equal))
                out.append(shown.replace("{", "{{").replace("}", "}}"))
                if conversion is None and not part.format_spec:
                    conversion = "r"
            args.append(f"({expr})")
            spec = ":" + fields(part.format_spec, args) if part.format_spec is not None else ""
            out.append("{" + (f"!{conversion}" if conversion else "") + spec + "}")
        return "".join(out)

    class ToFormat(cst.CSTTransformer):
        def leave_FormattedString(self, original, updated):
            args: list[str] = []
            body = fields(updated.parts, args)
            prefix = updated.prefix.replace("f", "").replace("F", "")
            quote = updated.start[len(updated.prefix):]
            literal = f"{prefix}{quote}{body}{updated.end}"
            call = cst.parse_expression(f"({literal}.format({', '.join(args)}))")
            return call.with_changes(lpar=updated.lpar, rpar=updated.rpar) if updated.lpar else call

    try:
        return module.visit(ToFormat()).code
    except Exception as exc:  # noqa: BLE001 - libcst raises several types on odd trees
        raise RewriteError(f"libcst could not rewrite f-strings: {exc}") from None
