"""The records' packed code form: our minifier pipeline equals python_minifier.minify's own output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import python_minifier

from harness.codebytes import minify_like_records, packed_size

RECORDS_CALL = dict(rename_locals=False, hoist_literals=False, remove_literal_statements=True)

SAMPLES = {
    "docstrings, annotations, pass, object base, return None, raise X()": '''#!/usr/bin/env python3
"""Module docstring."""
import os
import sys
from typing import Any


class A(object):
    """Doc."""
    x: int = 1

    def f(self, a: int, /, b: "str" = "s") -> None:
        pass
        return None

    def g(self):
        if False:
            print("dead")
        raise ValueError()


def h(n: int) -> int:
    "literal statement"
    y = 2 ** 10 + 3 * 4
    return n + y + len(sys.argv) + len(os.sep)
''',
    "shadowed exception name keeps its brackets": '''
class ValueError(Exception):
    pass


def f():
    raise ValueError()
''',
    "exec and globals taint the module": '''
def f(code):
    exec(code)
    return globals()["x"]
''',
}


@pytest.mark.parametrize("source", SAMPLES.values(), ids=list(SAMPLES))
def test_same_output_as_python_minifier(source: str) -> None:
    assert minify_like_records(source) == python_minifier.minify(source, **RECORDS_CALL)


def test_packed_size_is_the_wrapper_length() -> None:
    source = SAMPLES["docstrings, annotations, pass, object base, return None, raise X()"]
    size = packed_size(source)
    assert 80 < size < len(source) + 200
    assert packed_size(source, "brotli") != size


@pytest.mark.skipif(not os.environ.get("PG_REPO"), reason="needs PG_REPO (a clone of openai/parameter-golf)")
def test_same_output_on_packed_records() -> None:
    scripts = sorted(Path(os.environ["PG_REPO"], "records").glob("*/2026-04-[123]*/train_gpt.py"))
    assert scripts, "no 2026-04-10+ records found under PG_REPO"
    for script in scripts[:4]:
        source = script.read_text(encoding="utf-8")
        assert minify_like_records(source) == python_minifier.minify(source, **RECORDS_CALL), script
