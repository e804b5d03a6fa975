"""A libcst codemod that makes an ILLEGAL variant of a score-first TTT script, for checking that `trace`
catches it: in each chunk loop of a TTT function, the statement that scores the chunk is moved after the
statement that trains on it (train, then score the same chunk).

A statement scores when it holds a `with torch.no_grad()` / `inference_mode()` block or calls a function
whose name contains "score" or "eval"; it trains when it holds a `.backward(` call or calls a function whose
name contains "train". Packed scripts are unpacked first (harness.evaluate.adapter.decoded_source).

Usage: python -m harness.trace.codemod SRC_FOLDER DST_FOLDER
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import libcst as cst
import libcst.matchers as m

from harness.evaluate.adapter import decoded_source


class CodemodError(ValueError):
    """The script has no chunk loop this codemod recognises."""


def _called_names(node: cst.CSTNode) -> list[str]:
    names = []
    for call in m.findall(node, m.Call()):
        func = call.func
        if isinstance(func, cst.Name):
            names.append(func.value)
        elif isinstance(func, cst.Attribute):
            names.append(func.attr.value)
    return names


def _scores(stmt: cst.CSTNode) -> bool:
    names = _called_names(stmt)
    if "backward" in names:
        return False
    for w in m.findall(stmt, m.With()):
        if any(n in ("no_grad", "inference_mode") for item in w.items for n in _called_names(item)):
            return True
    return any("score" in n.lower() or n.lower().startswith("eval") and n != "eval" for n in names)


def _trains(stmt: cst.CSTNode) -> bool:
    names = _called_names(stmt)
    return "backward" in names or any("train" in n.lower() and n != "train" for n in names)


class _SwapInChunkLoops(cst.CSTTransformer):
    def __init__(self) -> None:
        self.depth_ttt = 0
        self.swapped = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if "ttt" in node.name.value.lower() or node.name.value == "main":
            self.depth_ttt += 1

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if "ttt" in original.name.value.lower() or original.name.value == "main":
            self.depth_ttt -= 1
        return updated

    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For:
        if not self.depth_ttt or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        body = list(updated.body.body)
        score = next((i for i, s in enumerate(body) if _scores(s) and not _trains(s)), None)
        if score is None:
            return updated
        train = next((j for j in range(score + 1, len(body)) if _trains(body[j]) and not _scores(body[j])), None)
        if train is None:
            return updated
        moved = body.pop(score)
        body.insert(train, moved)      # after the training statement (which shifted up by one)
        self.swapped += 1
        return updated.with_changes(body=updated.body.with_changes(body=body))


def train_before_score(source: str) -> str:
    """The source with each TTT chunk loop's scoring statement moved after its training statement."""
    tree = cst.parse_module(source)
    swap = _SwapInChunkLoops()
    out = tree.visit(swap)
    if not swap.swapped:
        raise CodemodError("no TTT chunk loop that scores and then trains was found")
    return out.code


def make_variant(src: Path, dst: Path) -> Path:
    """Copy the records folder `src` to `dst` with an unpacked, train-before-score train_gpt.py."""
    script = src / "train_gpt.py"
    source, _ = decoded_source(script)
    mutated = train_before_score(source)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    (dst / "train_gpt.py").write_text(mutated, encoding="utf-8")
    return dst / "train_gpt.py"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m harness.trace.codemod SRC_FOLDER DST_FOLDER", file=sys.stderr)
        return 2
    try:
        print(make_variant(Path(args[0]), Path(args[1])))
    except (OSError, CodemodError, cst.ParserSyntaxError) as exc:
        print(f"codemod: {args[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
