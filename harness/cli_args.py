"""Argument values shared by the subcommands that launch a run (`run`, `trace`, `eval`): sizes, `--env` items
and the `--scoring` choices."""

from __future__ import annotations

import argparse
import re

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE | re.ASCII)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCORING_KINDS = ("compiled", "eager-rounding", "eager")     # `eval --scoring` choices besides auto


def parse_size(text: str) -> int:
    """`8g`, `512m`, `20GiB`, `1024` → bytes (binary units); an argparse `type=` (bad text: a usage error)."""
    from fractions import Fraction  # exact for any length of digits (a float overflows); imported when used

    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 8g, 512m, 1024)")
    return int(Fraction(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def parse_env(items: list[str]) -> dict[str, str]:
    """`--env KEY=VALUE` items → a dict; ValueError naming the item when KEY is not a plain ASCII name
    (letters, digits, `_`, not starting with a digit) or VALUE holds a NUL byte."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise ValueError(f"--env wants KEY=VALUE with KEY a name (letters, digits, _), got {item!r}")
        if "\0" in value:
            raise ValueError(f"--env {key}: the value holds a NUL byte")
        env[key] = value
    return env


__all__ = ["parse_env", "parse_size"]
