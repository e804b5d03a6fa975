"""The path state every code rule shares (harness.scan.pathstate): branches and calls as the folder runs them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.pathstate import code_state, gate
from harness.submission import Submission

CODE = '''import os


class Hyperparameters:
    cache_enabled = bool(int(os.environ.get("CACHE_ENABLED", "0")))


def score(args, tokens):
    use_cache = getattr(args, "cache_enabled", False)
    total = 0
    for t in tokens:
        if use_cache:
            total += 2  # IN BRANCH
        total += 1  # ALWAYS
    return total


def helper(tokens):
    return len(tokens)  # HELPER


def main():
    args = Hyperparameters()
    score(args, [1, 2])
    if args.cache_enabled:
        helper([1])
'''


def _sub(tmp_path: Path, readme: str = "# r\n") -> AuditContext:
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_X"
    root.mkdir(parents=True)
    (root / "train_gpt.py").write_text(CODE, encoding="utf-8")
    (root / "README.md").write_text(readme, encoding="utf-8")
    return AuditContext(Submission(root, root.name))


def _line(marker: str) -> int:
    return next(i for i, text in enumerate(CODE.splitlines(), 1) if marker in text)


def _stmt(sub, marker: str):
    unit = sub.units[0]
    line = _line(marker)
    return unit, next(n for n in unit.nodes if isinstance(n, ast.stmt) and n.lineno == line)


def _finding(line: int, severity: str = "error") -> Finding:
    return Finding(rule="X", category="legality", severity=severity, confidence="high", file="train_gpt.py",
                   line=line, end_line=line, message="something", citation="c", source_weight="README")


@pytest.mark.parametrize("readme,runs", [("# r\n", False),
                                         ("# r\n\n```\nCACHE_ENABLED=1 torchrun train_gpt.py\n```\n", True)])
def test_branch_on_a_local_flag_follows_the_folder_configuration(tmp_path, readme, runs):
    sub = _sub(tmp_path, readme)
    unit, node = _stmt(sub, "# IN BRANCH")
    state = code_state(sub, unit, node)
    assert state.runs is runs
    if not runs:
        assert "off by default" in state.note and "CACHE_ENABLED" in state.note


def test_unconditional_line_runs(tmp_path):
    sub = _sub(tmp_path)
    unit, node = _stmt(sub, "# ALWAYS")
    assert code_state(sub, unit, node).runs


def test_function_called_only_in_an_off_branch_is_off(tmp_path):
    sub = _sub(tmp_path)
    unit, node = _stmt(sub, "# HELPER")
    state = code_state(sub, unit, node)
    assert not state.runs and "helper()" in state.note
    assert code_state(sub, unit, node, calls=False).runs


def test_gate_turns_an_error_on_an_off_path_into_a_warning_and_keeps_the_rest(tmp_path):
    sub = _sub(tmp_path)
    off = gate(sub, _finding(_line("# IN BRANCH")))
    assert off.severity == "warning" and "off by default" in off.message
    on = _finding(_line("# ALWAYS"))
    assert gate(sub, on) is on
    warning = _finding(_line("# IN BRANCH"), "warning")
    assert gate(sub, warning) is warning


def test_a_branch_whose_print_is_in_the_log_ran(tmp_path):
    """Off by default, but the log shows the line the branch prints: the branch ran."""
    code = CODE.replace("            total += 2  # IN BRANCH\n",
                        "            print(f\"cache_hit token={t} total={total}\")\n"
                        "            total += 2  # IN BRANCH\n")
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_X"
    root.mkdir(parents=True)
    (root / "train_gpt.py").write_text(code, encoding="utf-8")
    (root / "README.md").write_text("# r\n", encoding="utf-8")
    (root / "train_seed1337.log").write_text("cache_hit token=1 total=0\n", encoding="utf-8")
    ctx = AuditContext(Submission(root, root.name))
    unit = ctx.units[0]
    line = next(i for i, text in enumerate(code.splitlines(), 1) if "# IN BRANCH" in text)
    node = next(n for n in unit.nodes if isinstance(n, ast.stmt) and n.lineno == line)
    state = code_state(ctx, unit, node)
    assert state.runs and "ran: its print" in state.note
