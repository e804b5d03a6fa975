"""What a rule read on a submission, or why it read nothing.

A rule has three outcomes: a finding, checked and clean, or not checked. The third is not a pass: a TTT rule
on a folder without analysable code, or a time rule on a folder without logs, judged nothing. The engine asks
each rule for its `Coverage` after running it, and the reports show "not checked" with the reason instead of a
pass. Inputs a rule can read (`Rule.READS`): the training code as analysed (`code`), the training logs
(`logs`), `submission.json`, the folder's file list (`folder`) and the previous record (`sota`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from harness.context import AuditContext
from harness.submission import is_script_name

Status = Literal["checked", "not-checked", "n/a"]
SHOWN = 4          # file names listed before "and N more"


@dataclass(frozen=True)
class Coverage:
    status: Status
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


def checked(detail: str) -> Coverage:
    return Coverage("checked", detail)


def not_checked(why: str) -> Coverage:
    return Coverage("not-checked", why)


def not_applicable(why: str) -> Coverage:
    return Coverage("n/a", why)


def names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


# -- code ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeRead:
    """The code units the rules analysed (names as findings give them), or why there were none."""

    units: tuple[str, ...]
    why_none: str
    unread: tuple[str, ...] = ()       # .py files in the folder that the script does not visibly run
    file: str | None = None            # where the obstacle is, for a finding
    line: int | None = None
    todo: str = "review the code by hand"
    stand_in: tuple[str, ...] = ()     # no shipped code: the source dump of a log the rules read instead

    @property
    def analysed(self) -> bool:
        """Shipped code was analysed (a log's source dump standing in for it does not count)."""
        return bool(self.units)


def code_read(ctx: AuditContext) -> CodeRead:
    """What the code rules read: the context's bundle of the main script (computed once per audit); with no
    shipped code, the log's source dump that stands in for it (`AuditContext.units`)."""
    return ctx.derived(_code_read_or_stand_in)


def _code_read_or_stand_in(ctx: AuditContext) -> CodeRead:
    read = _code_read(ctx)
    if read.analysed:
        return read
    stand_in = tuple(u.name for u in ctx.units if u.name.endswith("(source dump)"))
    return replace(read, stand_in=stand_in) if stand_in else read


SHIP = "ship the training script in the folder as a regular file, or review the code by hand"


def _code_read(ctx: AuditContext) -> CodeRead:
    sub = ctx.submission
    if not sub.script_names:
        why, file = _why_no_script(sub)
        return CodeRead((), why, file=file, todo=SHIP)
    main = sub.script_names[0]
    bundle = ctx.code
    if not bundle.units:
        problem = next((p for p in bundle.problems if p.file == main), None) or \
            (bundle.problems[0] if bundle.problems else None)
        if problem is None:
            return CodeRead((), f"{main} could not be loaded", file=main)
        where = f" (line {problem.line})" if problem.line and f"line {problem.line}" not in problem.message else ""
        message = problem.message if problem.message.startswith(problem.file) else \
            f"{problem.file} {problem.message}"
        todo = ("make it parse with Python 3.12 (or review the code by hand)" if problem.kind == "syntax"
                else "review the code by hand")
        return CodeRead((), f"{message}{where}", file=problem.file, line=problem.line, todo=todo)
    if not any(unit.text.strip() for unit in bundle.units):
        return CodeRead((), f"{main} is empty", file=main, line=1, todo=SHIP)
    read = {unit.name.split(" (", 1)[0] for unit in bundle.units} | \
        {unit.packed_from for unit in bundle.units if unit.packed_from}
    unread = tuple(n for n in sub.files if n.endswith(".py") and n not in read and not sub.single_file)
    return CodeRead(tuple(unit.name for unit in bundle.units), "", unread)


def _why_no_script(sub: Any) -> tuple[str, str | None]:
    links = [n for n in sub.symlinks if "/" not in n and is_script_name(n)]
    if links:
        return f"{links[0]} is a symbolic link, which golfaudit never follows", links[0]
    refused = [p for p in sub.problems if is_script_name(p.file)]
    if refused:
        return refused[0].message, refused[0].file
    return "the folder has no training script (train_gpt.py, nor train*.py)", None


def code_coverage(ctx: AuditContext) -> Coverage:
    read = code_read(ctx)
    if read.stand_in:
        return checked(f"analysed {names(list(read.stand_in))} in place of the shipped code ({read.why_none})")
    if not read.analysed:
        return not_checked(f"no code was analysed: {read.why_none}")
    detail = f"analysed {names(list(read.units))}"
    if read.unread:
        detail += f"; not read (the script does not visibly run them): {names(list(read.unread))}"
    return checked(detail)


# -- the other inputs ------------------------------------------------------------------------------------
def _logs(ctx: AuditContext) -> tuple[str, str]:
    sub = ctx.submission
    if sub.logs:
        return f"{len(sub.logs)} log(s): {names([lg.name for lg in sub.logs])}", ""
    return "", "no training log"


def _json(ctx: AuditContext) -> tuple[str, str]:
    sub = ctx.submission
    name = sub.submission_json_name
    if name is None:
        return "", "no submission.json"
    if not isinstance(sub.submission_json.data, dict):
        return "", f"{name} could not be read as a JSON object"
    return name, ""


def _sota(ctx: AuditContext) -> tuple[str, str]:
    sub = ctx.submission
    return ("the previous record (--sota)", "") if sub.options.sota is not None else ("", "no --sota given")


def _folder(ctx: AuditContext) -> tuple[str, str]:
    sub = ctx.submission
    return f"the folder's {len(sub.files)} file(s)", ""


def _code(ctx: AuditContext) -> tuple[str, str]:
    cov = code_coverage(ctx)
    return (cov.detail, "") if cov.status == "checked" else ("", cov.detail)


INPUTS = {"code": _code, "logs": _logs, "submission.json": _json, "sota": _sota, "folder": _folder}


def coverage_of(reads: tuple[str, ...], ctx: AuditContext) -> Coverage:
    """Checked when any of `reads` was there to read (naming what was), else not checked (naming why)."""
    found, missing = [], []
    for what in reads:
        have, why = INPUTS[what](ctx)
        if have:
            found.append(have)
        else:
            missing.append(why)
    if found:
        return checked("; ".join(found))
    return not_checked("; ".join(missing) or "nothing to read")
