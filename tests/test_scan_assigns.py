"""One "assigned once" table for the scanner (harness.scan.assigns): nested scopes are skipped, every other
kind of binding disqualifies a name, and both users (bounds, explain) see the same table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.context import AuditContext
from harness.scan import bounds, explain
from harness.scan.assigns import scope_walk, single_assigns
from harness.submission import Submission
from rules import all_rules
from rules.ttt_score_first import ADAPT_THEN_SCORE, SLICE_AHEAD


def _func(code: str) -> ast.AST:
    return ast.parse(code).body[0]


def _singles(code: str) -> dict[str, str]:
    return {k: ast.unparse(v) for k, v in single_assigns(_func(code)).items()}


def test_both_users_share_one_table():
    assert bounds.single_assigns is single_assigns and explain.single_assigns is single_assigns


@pytest.mark.parametrize("nested", [
    "    def helper():\n        chunk = 1\n        return chunk\n",
    "    async def helper():\n        chunk = 1\n",
    "    class Helper:\n        chunk = 1\n",
    "    key = lambda r: (chunk := r)\n",
    "    def helper():\n        for chunk in range(3):\n            pass\n",
    "    def helper():\n        return [chunk for chunk in range(3)]\n",
])
def test_nested_scopes_do_not_rebind_the_outer_name(nested):
    code = "def f(n):\n    chunk = n * 2\n" + nested + "    return chunk\n"
    assert _singles(code)["chunk"] == "n * 2"


@pytest.mark.parametrize("rebind", [
    "    chunk, other = 1, 2\n",                 # tuple target
    "    [*chunk] = [1]\n",                      # starred in a list target
    "    chunk = other = 3\n",                   # chained
    "    chunk[0] = 3\n",                        # a store through the name
    "    chunk.attr = 3\n",
    "    chunk += 1\n",
    "    chunk: int = 3\n",
    "    for chunk in range(3):\n        pass\n",
    "    with open('x') as chunk:\n        pass\n",
    "    print(chunk := 3)\n",                   # walrus
    "    print([chunk for chunk in range(3)])\n",  # comprehension target (strict: counted)
    "    try:\n        pass\n    except ValueError as chunk:\n        pass\n",
    "    import os as chunk\n",
    "    from os import path as chunk\n",
    "    import chunk.sub\n",
    "    del chunk\n",
    "    global chunk\n",
    "    def chunk():\n        pass\n",
    "    class chunk:\n        pass\n",
    "    def helper():\n        nonlocal chunk\n        chunk = 1\n",
    "    def helper(v=(chunk := 1)):\n        pass\n",  # a default is evaluated in this scope
    "    @(chunk := dec)\n    def helper():\n        pass\n",
    "    class Helper(chunk := object):\n        pass\n",
    "    match n:\n        case [chunk]:\n            pass\n",
    "    match n:\n        case {'a': 1, **chunk}:\n            pass\n",
    "    match n:\n        case [*chunk]:\n            pass\n",
])
def test_every_other_binding_disqualifies_the_name(rebind):
    code = "def f(n, dec):\n    chunk = n * 2\n" + rebind + "    return chunk\n"
    assert "chunk" not in _singles(code)
    assert "n" not in _singles(code)  # parameters are not assignments


def test_lambda_module_and_class_scopes():
    lam = ast.parse("lambda v: (w := v) + 1", mode="eval").body
    assert set(single_assigns(lam)) == set()          # a walrus is never a plain assignment
    mod = ast.parse("a = 1\nb = 2\nb = 3\nd = 4\ndef g():\n    a = 5\nclass C:\n    c = 1\n"
                    "def h():\n    global d\n    d = 6\n")
    assert {k: ast.unparse(v) for k, v in single_assigns(mod).items()} == {"a": "1"}
    cls = next(n for n in mod.body if isinstance(n, ast.ClassDef))
    assert {k: ast.unparse(v) for k, v in single_assigns(cls).items()} == {"c": "1"}


def test_scope_walk_keeps_outer_parts_of_nested_scopes_only():
    func = _func("def f():\n    @deco\n    def g(a=default):\n        inner = 1\n    return g\n")
    names = {n.id for n in scope_walk(func) if isinstance(n, ast.Name)}
    assert names == {"deco", "default", "g"}
    assert single_assigns(func) is single_assigns(func)  # cached on the node


# through the rules: a nested helper's own local no longer hides what the outer function computes --------

TTT_IDS = ("TTT-SCORE-FIRST", "PREQUANT-TTT-ON-VAL", "TTT-NO-RESCORE", "TTT-MULTI-EPOCH", "TTT-WARMUP-ON-VAL")
HELPER = "        def _log():\n            b = 'chunk end'\n            return b\n"


def _findings(source: str, tmp_path: Path) -> list:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_Assigns"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(source)
    ctx = AuditContext(Submission(folder, str(folder)))
    return [f for r in all_rules() if r.ID in TTT_IDS for f in r().check(ctx)]


def test_slice_bounds_see_through_a_nested_helper_local(tmp_path):
    anchor, trained = "        x = tokens[a:b + 1]\n", "y = tokens[a:b + chunk + 1]"
    assert anchor in SLICE_AHEAD and trained in SLICE_AHEAD
    # the trained end is written without `b`: comparing it needs `b = a + chunk` substituted
    source = SLICE_AHEAD.replace(trained, "y = tokens[a:a + 2 * chunk + 1]")
    assert _findings(source, tmp_path / "plain")[0].rule == "TTT-SCORE-FIRST"
    fs = _findings(source.replace(anchor, anchor + HELPER), tmp_path / "helper")
    errs = [f for f in fs if f.severity == "error"]
    assert [f.rule for f in errs] == ["TTT-SCORE-FIRST"] and "reaches past" in errs[0].message


def _gated(source: str) -> str:
    src = source.replace('"TTT_ENABLED", "1"', '"TTT_ENABLED", "0"')
    return src.replace("    if args.ttt_enabled:\n", "    use_ttt = args.ttt_enabled\n    if use_ttt:\n")


def test_branch_gate_inlined_despite_a_nested_helper_local(tmp_path):
    src = _gated(ADAPT_THEN_SCORE)
    assert "use_ttt = args.ttt_enabled" in src
    nested = src.replace("    use_ttt = args.ttt_enabled\n",
                         "    use_ttt = args.ttt_enabled\n\n    def _describe():\n        use_ttt = 'off'\n"
                         "        return use_ttt\n", 1)
    for i, code in enumerate((src, nested)):
        fs = _findings(code, tmp_path / str(i))
        assert not [f for f in fs if f.severity == "error"], code
        assert any(f.severity == "warning" and "off by default" in f.message for f in fs)


def test_branch_gate_not_inlined_when_a_tuple_rebinds_it(tmp_path):
    src = _gated(ADAPT_THEN_SCORE).replace("    if use_ttt:\n", "    use_ttt, _ = True, 0\n    if use_ttt:\n")
    fs = _findings(src, tmp_path)
    assert [f.rule for f in fs if f.severity == "error"] == ["TTT-SCORE-FIRST"]
