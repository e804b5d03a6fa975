"""harness.scan.numbers: which expressions stand for a number the code fixes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.context import AuditContext
from harness.scan.numbers import Numbers, numbers_of
from harness.submission import Submission

SOURCE = '''import math
import os

BYTES_PER_TOKEN = 3.72
HALF = BYTES_PER_TOKEN / 2
ENV_RATIO = float(os.environ.get("RATIO", "4.1"))
TWICE = 1
TWICE = 2


class Hyperparameters:
    bytes_per_token = float(os.environ.get("BYTES_PER_TOKEN", 3.6))
    plain_field = 0.27


def f(h, x, BYTES_PER_TOKEN_ARG):
    local = BYTES_PER_TOKEN * 2
    measured = x.sum()
    return local, measured
'''


@pytest.fixture(scope="module")
def numbers(tmp_path_factory) -> Numbers:
    root = tmp_path_factory.mktemp("n") / "records" / "track_10min_16mb" / "2026-04-20_X"
    root.mkdir(parents=True)
    (root / "train_gpt.py").write_text(SOURCE, encoding="utf-8")
    return numbers_of(AuditContext(Submission(root, root.name)))


def value(numbers: Numbers, expr: str, local: dict | None = None):
    found = numbers.value(ast.parse(expr, mode="eval").body, local)
    return None if found is None else (round(found.value, 4), found.origin.split(" (")[0])


@pytest.mark.parametrize("expr,expected", [
    ("3.5", (3.5, "literal")),
    ("BYTES_PER_TOKEN", (3.72, "module constant BYTES_PER_TOKEN")),
    ("HALF", (1.86, "module constant HALF")),
    ("ENV_RATIO", (4.1, "module constant ENV_RATIO")),
    ("h.bytes_per_token", (3.6, "setting bytes_per_token, env BYTES_PER_TOKEN")),
    ("args.plain_field", (0.27, "setting plain_field")),
    ("float(os.environ.get('OTHER', '2.5'))", (2.5, "environment default OTHER")),
    ("math.log(2) * BYTES_PER_TOKEN", (2.5785, "module constant BYTES_PER_TOKEN")),
    ("TWICE", None),                      # assigned twice: not a constant
    ("x.sum()", None),
    ("UNKNOWN_NAME", None),
])
def test_value(numbers, expr, expected):
    assert value(numbers, expr) == expected


def test_local_names_and_parameters(numbers):
    fn = next(n for n in ast.walk(ast.parse(SOURCE)) if isinstance(n, ast.FunctionDef))
    from harness.astwalk import local_values

    local = local_values(fn)
    assert value(numbers, "local", local) == (7.44, "module constant BYTES_PER_TOKEN")
    assert value(numbers, "measured", local) is None
    # a parameter shadows a module constant of the same name: it is a run-time value
    assert value(numbers, "BYTES_PER_TOKEN", {"BYTES_PER_TOKEN": []}) is None


def test_bad_input_is_none(tmp_path: Path):
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Y"
    root.mkdir(parents=True)
    (root / "train_gpt.py").write_text("X = 1 / 0\nY = 'abc'\nZ = 10 ** 10 ** 10\n", encoding="utf-8")
    numbers = numbers_of(AuditContext(Submission(root, root.name)))
    assert value(numbers, "X") is None and value(numbers, "Y") is None and value(numbers, "Z") is None
