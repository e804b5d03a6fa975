"""The program model and trace: val data followed by flow, calls resolved through aliases, closures,
lambdas and function arguments, reaching definitions, exclusive branches, packed scripts."""

from __future__ import annotations

import base64
import lzma
import textwrap

from harness.parse import parse_source
from harness.scan.model import Program
from harness.scan.trace import trace
from harness.scan.ttt import analyse_units
from harness.scan.units import ScanUnit, scan_units
from harness.submission import Submission


def units(src: str, name: str = "train_gpt.py") -> list[ScanUnit]:
    src = textwrap.dedent(src)
    return [ScanUnit(name, src, parse_source(src).tree)]


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
    (unit,) = scan_units(Submission(tmp_path, tmp_path.name))
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
