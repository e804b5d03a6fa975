"""Sizes and `--env` items for `audit.py run` and `audit.py trace`: one parser (harness.cli_args), the same
message from both commands, a usage error (exit 2) naming the bad item, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import audit
from harness.cli_args import parse_env, parse_size

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "size"), [
    ("1024", 1024), ("8g", 8 << 30), ("8G", 8 << 30), ("8gb", 8 << 30), ("20GiB", 20 << 30),
    ("512m", 512 << 20),
    ("1.5k", 1536), (".5g", 1 << 29), (" 4 M ", 4 << 20), ("0", 0), ("8b", 8), ("2t", 2 << 40),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "8x", "g", "-1", "inf", "nan", "1e3", "8ib", "8 g b", "0x10",
                                  "\u0663g"])
def test_bad_sizes(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        parse_size(text)


def test_huge_size_is_exact_not_an_overflow():
    assert parse_size("9" * 400 + ".5g") == (int("9" * 400) * 2 + 1) * (1 << 29)


def test_env_items():
    assert parse_env([]) == {}
    assert parse_env(["A=1", "_B2=x=y", "C=", "A=2"]) == {"A": "2", "_B2": "x=y", "C": ""}


@pytest.mark.parametrize("item", ["no-equals", "=1", "1A=2", "A-B=1", "A B=1", "é=1", " A=1"])
def test_bad_env_keys_name_the_item(item):
    with pytest.raises(ValueError) as err:
        parse_env(["OK=1", item])
    assert repr(item) in str(err.value) and "--env wants KEY=VALUE" in str(err.value)


def test_env_value_with_nul_is_refused():
    with pytest.raises(ValueError, match="--env A: the value holds a NUL byte"):
        parse_env(["A=x\0y"])


def _argv(command: str, folder: Path, *extra: str) -> list[str]:
    base = [command, str(folder), "--data", str(folder)]
    return base + (["--tokenizer", str(folder)] if command == "run" else []) + list(extra)


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "train_gpt.py").write_text("print('hello')\n")
    return tmp_path


@pytest.mark.parametrize("command", ["run", "trace"])
def test_bad_env_is_the_same_usage_error_in_both_commands(command, folder, capsys):
    assert audit.main(_argv(command, folder, "--env", "OK=1", "--env", "1A=2")) == 2
    err = capsys.readouterr().err
    assert err == "golfaudit: --env wants KEY=VALUE with KEY a name (letters, digits, _), got '1A=2'\n"


@pytest.mark.parametrize("command", ["run", "trace"])
def test_bad_size_is_an_argparse_usage_error(command, folder, capsys):
    with pytest.raises(SystemExit) as done:
        audit.main(_argv(command, folder, "--max-memory", "8x"))
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "argument --max-memory: not a size: '8x'" in err


@pytest.mark.parametrize(("command", "extra", "expect"), [
    ("run", ("--env", "A-B=1"), "got 'A-B=1'"),
    ("trace", ("--env", "no-equals"), "got 'no-equals'"),
    ("run", ("--disk-limit=-5g",), "argument --disk-limit: not a size: '-5g'"),
    ("trace", ("--max-memory", "infg"), "argument --max-memory: not a size: 'infg'"),
])
def test_through_the_command_line_no_traceback(command, extra, expect, folder):
    done = subprocess.run([sys.executable, str(ROOT / "audit.py"), *_argv(command, folder, *extra)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and expect in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
