"""The program model and trace: val data followed by flow, calls resolved through aliases, closures,
lambdas and function arguments, reaching definitions, exclusive branches, packed scripts."""

from __future__ import annotations

import ast
import base64
import lzma
import textwrap

from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.parse import parse_source
from harness.scan.model import Program
from harness.scan.trace import trace
from harness.scan.ttt import analyse_units
from harness.submission import Submission


def units(src: str, name: str = "train_gpt.py") -> list[CodeUnit]:
    src = textwrap.dedent(src)
    return [CodeUnit(name, src, parse_source(src).tree)]


def events(src: str, kind: str | None = None):
    evs = trace(Program(units(src)))
    return [e for e in evs if kind is None or e.kind == kind]


def kinds(src: str) -> list[str]:
    return sorted(j.kind for j in analyse_units(units(src)).judgements)


HEAD = """
import glob, torch
import torch.nn.functional as F
VAL = "./data/fineweb_val_*.bin"
def load(p):
    return torch.cat([torch.load(f) for f in glob.glob(p)])
def score(model, toks):
    total = torch.zeros(())
    with torch.no_grad():
        for i in range(0, toks.numel() - 1, 64):
            total += F.cross_entropy(model(toks[i:i + 64]), toks[i + 1:i + 65], reduction="sum")
    return total
"""


def test_val_followed_by_flow_not_by_name():
    src = HEAD + """
def main():
    m = torch.nn.Linear(2, 2)
    banana = load(VAL)
    apple = banana[:4096].to("cpu").clone()
    F.cross_entropy(m(apple[:-1]), apple[1:]).backward()
    print(score(m, banana))
main()
"""
    grads = events(src, "grad")
    assert len(grads) == 1 and grads[0].line == src.splitlines().index(
        '    F.cross_entropy(m(apple[:-1]), apple[1:]).backward()') + 1
    assert kinds(src) == ["score-after-train"]


def test_train_data_is_not_val():
    src = HEAD + """
def main():
    m = torch.nn.Linear(2, 2)
    train = load("./data/fineweb_train_*.bin")
    F.cross_entropy(m(train[:-1]), train[1:]).backward()
    print(score(m, load(VAL)))
main()
"""
    assert events(src, "grad") == []


def test_shape_queries_do_not_carry_val():
    src = HEAD + """
def main():
    m = torch.nn.Linear(2, 2)
    v = load(VAL)
    n = v.numel() // 2
    train = torch.randint(0, 10, (n,))
    F.cross_entropy(m(train[:-1]), train[1:]).backward()
main()
"""
    assert events(src, "grad") == []


def test_name_reuse_in_one_function_is_not_confused():
    src = HEAD + """
def main():
    m = torch.nn.Linear(2, 2)
    x = torch.randint(0, 10, (100,))
    F.cross_entropy(m(x[:-1]), x[1:]).backward()
    x = load(VAL)
    print(score(m, x))
main()
"""
    assert events(src, "grad") == []


def test_alias_partial_and_function_argument_are_followed():
    src = HEAD + """
import functools
def adapt(model, data, lr):
    F.cross_entropy(model(data[:-1]), data[1:]).backward()
def run(fn, *args):
    return fn(*args)
def main():
    m = torch.nn.Linear(2, 2)
    v = load(VAL)
    go = functools.partial(adapt, lr=0.1)
    run(go, m, v)
    print(score(m, v))
main()
"""
    grads = events(src, "grad")
    assert grads and [c[2] for c in grads[0].chain][-2:] == ["run", "adapt"]


def test_exclusive_branches_are_not_ordered():
    src = HEAD + """
def main(flag):
    m = torch.nn.Linear(2, 2)
    v = load(VAL)
    if flag:
        F.cross_entropy(m(v[:-1]), v[1:]).backward()
    else:
        print(score(m, v))
main(True)
"""
    assert kinds(src) == ["undecided"]


def test_an_early_return_makes_the_rest_of_the_block_its_else():
    src = HEAD + """
def final(m, v, flag):
    if flag:
        F.cross_entropy(m(v[:-1]), v[1:]).backward()
        return None
    return score(m, v)
def main(flag):
    final(torch.nn.Linear(2, 2), load(VAL), flag)
main(True)
"""
    assert kinds(src) == ["undecided"]                          # a grad with no score that can follow it
    assert kinds(src.replace("        return None\n", "")) == ["score-after-train"]   # falls through: ordered


CONFIG = HEAD + """
def main():
    conf = {"train": "./data/fineweb_train_*.bin", "val": VAL, "n": 64}
    CHANGE
    m = torch.nn.Linear(2, 2)
    data = load(READ)
    F.cross_entropy(m(data[:-1]), data[1:]).backward()
    print(score(m, load(conf["val"])))
main()
"""


def test_a_constant_key_of_a_literal_dict_reads_only_that_value():
    plain = CONFIG.replace("    CHANGE\n", "")
    assert events(plain.replace("READ", 'conf["train"]'), "grad") == []
    assert events(plain.replace("READ", 'conf.get("train", "x")'), "grad") == []
    assert kinds(plain.replace("READ", 'conf["val"]')) == ["score-after-train"]
    assert kinds(plain.replace("READ", 'conf.get("missing", VAL)')) == ["score-after-train"]


def test_a_dict_changed_after_its_display_is_read_whole():
    for change in ('conf["train"] = VAL', 'conf.update(train=VAL)', 'conf |= {"train": VAL}',
                   'conf = dict(conf)', 'del conf["n"]', 'with open(VAL) as conf: pass',
                   'print(conf := {"train": VAL})'):
        src = CONFIG.replace("CHANGE", change).replace("READ", 'conf["train"]')
        assert kinds(src) == ["score-after-train"], change


CALLED = HEAD + """
def evaluate(m, v, ttt_enabled=False, lr=0.0):
    active = bool(ttt_enabled) and lr > 0
    if not v.numel():
        active = False
    with torch.no_grad():
        total = score(m, v)
    if active:
        F.cross_entropy(m(v[:-1]), v[1:]).backward()
    return total
def main():
    m = torch.nn.Linear(2, 2)
    v = load(VAL)
    for step in range(3):
        evaluate(m, v, CALL)
main()
"""


def test_a_branch_is_decided_by_the_arguments_of_the_call_that_reaches_it():
    from harness.scan.explain import resolve_test
    (grad,) = events(CALLED.replace("CALL", "ttt_enabled=True, lr=0.1"), "grad")
    (cond,) = [c for c in grad.conds if c.polarity]
    assert ast.unparse(resolve_test(cond.test, cond.frames)) == "(bool(True) and 0.1 > 0) and __golfaudit_unknown__"
    (grad,) = events(CALLED.replace("CALL", "lr=0.1"), "grad")
    (cond,) = [c for c in grad.conds if c.polarity]
    assert ast.unparse(resolve_test(cond.test, cond.frames)) == "(bool(False) and 0.1 > 0) and __golfaudit_unknown__"


def test_a_path_the_calls_never_take_is_a_warning_not_an_error(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    seen = {}
    for call in ("lr=0.1", "ttt_enabled=True, lr=0.1"):
        folder = tmp_path / call.replace("=", "").replace(", ", "_")
        folder.mkdir()
        (folder / "train_gpt.py").write_text(textwrap.dedent(CALLED.replace("CALL", call)))
        out = subprocess.run([sys.executable, str(root / "audit.py"), "check", str(folder), "--format", "json"],
                             capture_output=True, text=True, cwd=root, timeout=300)
        findings = json.loads(out.stdout)["submissions"][0]["findings"]
        seen[call] = [(f["severity"], f["message"]) for f in findings if f["rule"] == "TTT-MULTI-EPOCH"]
    ((severity, message),) = seen["lr=0.1"]
    assert severity == "warning" and "does not run as the code calls it (`active` at line" in message
    ((severity, message),) = seen["ttt_enabled=True, lr=0.1"]
    assert severity == "error" and "does not run" not in message


def test_dynamic_exec_is_undecided():
    src = HEAD + """
def main():
    exec(open("plugin.py").read())
main()
"""
    assert kinds(src) == ["undecided"]


def test_packed_script_is_unpacked_from_its_literal(tmp_path):
    inner = HEAD + "print('hello')\n"
    blob = base64.b85encode(lzma.compress(inner.encode(), format=lzma.FORMAT_RAW,
                                          filters=[{"id": lzma.FILTER_LZMA2}])).decode()
    wrapper = ("import lzma as L,base64 as B\n"
               f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')
    (tmp_path / "train_gpt.py").write_text(wrapper)
    (unit,) = AuditContext(Submission(tmp_path, tmp_path.name)).units
    assert unit is not None and unit.name == "train_gpt.py (unpacked)" and unit.text == inner
    assert unit.packed_from == "train_gpt.py"


def test_score_first_proof_names_loop_score_update_and_guard():
    src = HEAD + """
def ttt(model, v, c):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = torch.zeros(())
    n = v.numel() // c
    for k in range(n):
        piece = v[k * c:(k + 1) * c + 1]
        with torch.inference_mode():
            acc += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum")
        if k != n - 1:
            F.cross_entropy(model(piece[:-1]), piece[1:]).backward()
            opt.step()
    return acc
def main():
    print(ttt(torch.nn.Linear(2, 2), load(VAL), 1024))
main()
"""
    (proof,) = analyse_units(units(src)).judgements
    lines = src.splitlines()
    assert proof.kind == "proof"
    assert lines[proof.loop.line - 1].strip().startswith("for k in")
    assert "acc +=" in lines[proof.score.line - 1]
    assert ".backward()" in lines[proof.grad.line - 1]
    assert lines[proof.guard.line - 1].strip().startswith("if k != n - 1")


def test_training_on_the_next_unscored_chunk_is_not_proven():
    src = HEAD + """
def ttt(model, v, c):
    acc = torch.zeros(())
    for k in range(v.numel() // c):
        piece = v[k * c:(k + 1) * c + 1]
        with torch.no_grad():
            acc += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum")
        F.cross_entropy(model(v[:-1]), v[1:]).backward()
    return acc
def main():
    print(ttt(torch.nn.Linear(2, 2), load(VAL), 1024))
main()
"""
    assert kinds(src) == ["score-after-train"]
