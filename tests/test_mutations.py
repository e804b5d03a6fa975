"""The scanner judges programs, not spelling: verdicts and deciding lines survive semantics-preserving
rewrites (tests/mutations.py: consistent renaming, function reordering, inlining a helper, for → while),
on the TTT rules' own examples and, with PG_REPO, on real records and a seed PR."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from harness.context import AuditContext
from harness.submission import Submission
from rules import all_rules
from tests.conftest import pg_repo, requires_pg_repo
from tests.mutations import MUTATIONS, for_to_while, inline_helper, rename_identifiers, reorder_functions

TTT_IDS = ("TTT-SCORE-FIRST", "PREQUANT-TTT-ON-VAL", "TTT-NO-RESCORE", "TTT-MULTI-EPOCH", "TTT-WARMUP-ON-VAL")
RULES = [r for r in all_rules() if r.ID in TTT_IDS]


def signature(folder: Path, mutation: str) -> list[tuple]:
    """(rule, severity, confidence, deciding line) of every TTT finding. The deciding line is the line
    number under renaming (layout is kept) and the trained-on line's text otherwise."""
    ctx = AuditContext(Submission(folder, str(folder)))
    out = []
    for rule in RULES:
        for f in rule().check(ctx):
            text = f.evidence.split("\n")[0].split(": ", 1)[-1]
            where = f.line if mutation == "rename" else re.sub(r"_inl\b", "", text).strip()
            out.append((f.rule, f.severity, f.confidence, where, "is taken as validation data" in f.message))
    return sorted(out, key=repr)


def _folder(tmp: Path, files: dict[str, str]) -> Path:
    root = tmp / "records" / "track_10min_16mb" / "2026-04-20_Mut"
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


EXAMPLES = [(r.ID, kind, i, ex) for r in RULES for kind, exs in (("legal", r.LEGAL), ("illegal", r.ILLEGAL))
            for i, ex in enumerate(exs) if "train_gpt.py" in ex.files]


def test_mutations_preserve_semantics_of_python():
    src = "def f(a, b=2):\n    s = 0\n    for i in range(a):\n        s += i * b\n    return s\n\n" \
          "def main():\n    t = f(4)\n    return t\n"
    for fn in (rename_identifiers, reorder_functions, for_to_while, inline_helper):
        out = fn(src)
        ns: dict = {}
        exec(compile(out, "<m>", "exec"), ns)  # noqa: S102 - our own tiny example, to prove equivalence
        entry = [v for k, v in ns.items() if callable(v) and k not in ("__builtins__",)]
        results = {v() for v in entry if v.__code__.co_argcount == 0}
        assert results == {12}, (fn.__name__, out)
    assert "while True" in for_to_while(src)
    assert "def f" not in inline_helper(src)
    assert ast.parse(rename_identifiers(src)).body[0].name != "f"


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("rule_id,kind,index,example", EXAMPLES,
                         ids=[f"{r}-{k}-{i}" for r, k, i, _ in EXAMPLES])
def test_examples_survive_mutation(rule_id, kind, index, example, mutation, tmp_path):
    base = signature(_folder(tmp_path / "a", dict(example.files)), mutation)
    try:
        mutated = MUTATIONS[mutation](example.files["train_gpt.py"])
    except ValueError:
        pytest.skip("no helper fits inlining in this example")
    files = {**example.files, "train_gpt.py": mutated}
    after = signature(_folder(tmp_path / "b", files), mutation)
    if mutation == "rename":
        # a finding that rests on a parameter's role read from names (`val_tokens`, the token input of an
        # `eval_val*` function, a slice of either; nothing binds it to val by data flow) has no other
        # evidence: renaming drops exactly those findings and changes nothing else
        base = [s for s in base if not s[4]]
    assert after == base, f"{mutation} changed the findings:\n{mutated}"


REAL = ["track_10min_16mb/2026-03-17_LoRA_TTT", "track_10min_16mb/2026-03-23_LeakyReLU_LegalTTT_ParallelMuon"]


def _mutate_record(src: Path, dest: Path, mutation: str) -> Path:
    shutil.copytree(src, dest)
    script = dest / "train_gpt.py"
    script.write_text(MUTATIONS[mutation](script.read_text()))
    return dest


@requires_pg_repo
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("record", REAL)
def test_real_records_survive_mutation(record, mutation, tmp_path):
    src = pg_repo() / "records" / record
    base = signature(src, mutation)
    assert any(s[1] == "info" for s in base), "the record's score-first proof is missing"
    after = signature(_mutate_record(src, tmp_path / "r", mutation), mutation)
    assert after == base


@requires_pg_repo
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_illegal_seed_pr_survives_mutation(mutation, tmp_path):
    from tests.test_seed_prs import _has_ref, export_pr_folders

    repo = pg_repo()
    if not _has_ref(repo, 398):
        pytest.skip("refs/pull/398/head not fetched")
    (folder,) = export_pr_folders(repo, 398, tmp_path / "pr")
    base = signature(folder, mutation)
    assert any(s[1] == "error" and s[2] in ("high", "medium") for s in base)
    after = signature(_mutate_record(folder, tmp_path / "m", mutation), mutation)
    assert after == base
