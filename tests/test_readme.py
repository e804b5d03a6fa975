"""Every command block of README.md runs as written, and the product text says nothing about who made it.

A block is tested when an HTML comment `<!-- readme-test[: tags] -->` stands on the line before its
```sh fence. Its commands (a line, with `\\` continuations) run one by one in the repository root with
this interpreter's folder first on PATH (as with the venv active), in file order. Tags:
`eval` (needs torch and sentencepiece), `tokenizers` (the challenge's sp1024 tokenizer in $TOKENIZERS,
default /work/shared/tokenizers), `sandbox` (root and unshare), `gpu` (CUDA), `pg-repo` (PG_REPO),
`artifact` (ARTIFACT, a record's compressed model), `exit=0,1` (the exit codes the commands may end with;
default 0). A block whose needs are missing is skipped, never run half-way.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- readme-test(?::\s*(?P<tags>[^>]*?))?\s*-->\s*$")
UNTESTED_OK = ("make demo", "make test")     # the blocks `make test` itself is made of
TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    line: int
    tags: frozenset[str]
    exits: frozenset[int]
    commands: tuple[str, ...]

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def sh_blocks(text: str) -> list[tuple[int, str | None, list[str]]]:
    """(line of the fence, marker tags or None when unmarked, body lines) of every ```sh block."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            marker = MARKER.match(lines[i - 1].strip()) if i else None
            tags = (marker.group("tags") or "") if marker else None
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            out.append((i + 1, tags, lines[i + 1:j]))
            i = j
        i += 1
    return out


def commands(body: list[str]) -> list[str]:
    out, current = [], ""
    for line in body:
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.strip().startswith("#"):
            out.append(current.strip())
        current = ""
    return out


def blocks_under_test() -> list[Block]:
    blocks = []
    for line, tags, body in sh_blocks(README.read_text(encoding="utf-8")):
        if tags is None:
            continue
        words = tags.split()
        exits = next((w.split("=", 1)[1] for w in words if w.startswith("exit=")), "0")
        blocks.append(Block(line, frozenset(w for w in words if not w.startswith("exit=")),
                            frozenset(int(x) for x in exits.split(",")), tuple(commands(body))))
    return blocks


def _tokenizer() -> Path:
    return Path(os.environ.get("TOKENIZERS", "/work/shared/tokenizers")) / "fineweb_1024_bpe.model"


def missing(tags: frozenset[str]) -> str | None:
    """Why a block with these tags cannot run here, or None."""
    if "eval" in tags and not all(importlib.util.find_spec(m) for m in ("torch", "sentencepiece")):
        return "torch and sentencepiece are not installed (pip install -e '.[eval]')"
    if "tokenizers" in tags and not _tokenizer().is_file():
        return f"no challenge tokenizer at {_tokenizer()} (set TOKENIZERS)"
    if "pg-repo" in tags and not os.environ.get("PG_REPO"):
        return "PG_REPO is not set"
    if "artifact" in tags and not os.environ.get("ARTIFACT"):
        return "ARTIFACT is not set"
    if "gpu" in tags:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device"
    if "sandbox" in tags:
        from harness.sandbox.supervisor import sandbox_available

        return sandbox_available()
    return None


def test_every_command_block_is_tested_or_is_make():
    for line, tags, body in sh_blocks(README.read_text(encoding="utf-8")):
        if tags is None:
            assert all(c.startswith(UNTESTED_OK) for c in commands(body)), f"README.md:{line} is not marked"
    assert len(blocks_under_test()) >= 8


def test_readme_is_a_manual_of_at_most_200_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("block", blocks_under_test(), ids=str)
def test_readme_block_runs_as_written(block: Block):
    reason = missing(block.tags)
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    (ROOT / "local").mkdir(exist_ok=True)
    for command in block.commands:
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        assert done.returncode in block.exits, f"{block}: `{command}` exited {done.returncode}:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{block}: `{command}`:\n{done.stderr[-3000:]}"


# -- the product says what it does, never who made it or when ----------------------------------------------
PRODUCT = ["README.md", "audit.py", "docs", "harness", "rules", "benchmarks", "scripts", "submissions",
           "examples", "Makefile", "pyproject.toml"]
SUFFIXES = {".md", ".py", ".sh", ".yml", ".yaml", ".toml", ".txt", ""}
FORBIDDEN = [
    (re.compile(r"\bsession\s*\d+", re.IGNORECASE), "a work period (session N)"),
    (re.compile(r"\(s\d{1,2}\)|\bmarked s\d{1,2}\b|\bs\d{1,2}\s+rows\b|\w,\s*s\d{1,2}\)"), "a work period (sN)"),
    (re.compile(r"\b(?:this|that|the|a|previous|next|last)\s+session\b(?!\.py)", re.IGNORECASE), "a work period"),
    (re.compile(r"\bhelpers?\s+[A-Z]\b|\b(?:two|three|four|five|\d+)\s+helpers\b|\bhelper session\b"),
     "who made a change"),
    (re.compile(r"\b(?:AI\s+)?assistants?\b|\bClaude\b|\bChatGPT\b|\bLLM agents?\b", re.IGNORECASE),
     "who made a change"),
    (re.compile(r"\b(?:our\s+)?issues?\s+\d{1,3}\b(?!\s*(?:nats|bytes))", re.IGNORECASE), "our issue numbers"),
    (re.compile(r"\(fixed\)"), "a change's history"),
]


def product_files() -> list[Path]:
    out = []
    for name in PRODUCT:
        path = ROOT / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in SUFFIXES
                    and "__pycache__" not in p.parts]
    return out


def test_product_text_names_no_author_work_period_or_issue():
    hits = []
    for path in product_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, what in FORBIDDEN:
                if path.suffix == ".py" and what == "a work period (sN)":
                    continue        # `(s0 + bs)`, `min(s0, s1)`: variable names in code
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("line,bad", [
    ("measured in session 7 on an H100", True), ("| ours fast (s7) | H100 |", True), ("s5 rows are from", True),
    ("four helpers read 12 of the folders", True), ("owner: helper C", True), ("see issue 21", True),
    ("(fixed) The parser used to", True), ("written by an AI assistant", True),
    ("PR #1812 trains after scoring", False), ("issue #1017's conditions", False),
    ("harness/sandbox/session.py runs it", False), ("a sandbox session", False),
    ("| ours fast TTT (eager scoring, s7) |", True),
])
def test_the_phrase_patterns(line, bad):
    assert any(p.search(line) for p, _ in FORBIDDEN) is bad, line
