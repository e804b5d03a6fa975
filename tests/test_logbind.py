"""Log lines bound to the prints that wrote them (harness.scan.logbind), source dumps (harness.logdump),
and what the bindings decide (settings, the reported pass)."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.codeload import CodeUnit
from harness.context import AuditContext
from harness.logdump import find_dump, first_difference
from harness.rule_examples import materialise, run_example
from harness.scan.logbind import bind_logs, build_index
from harness.submission import Submission
from rules import rule_by_id
from rules.base import folder
from rules.ttt_no_rescore import two_passes

CODE = '''import os


class Hyperparameters:
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "1"))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))


def main(args, r, a, b, loss):
    print(f"ttt:rank{r} short={a} long={b} epochs={args.ttt_epochs}")
    log0("step:%d/%d loss:%.4f" % (a, b, loss))
    logger.info("ttt={} lr={:.3f}".format(args.ttt_enabled, loss))
    print("final", loss)
    print(f"a:{a}")
    print(f"a:{b}")
'''


def units(text: str = CODE) -> list[CodeUnit]:
    return [CodeUnit("train_gpt.py", text, ast.parse(text))]


def bound(log: str, text: str = CODE):
    return bind_logs(units(text), [("train.log", log)]).bindings


def test_fstring_holes_bind_values():
    [b] = bound("ttt:rank0 short=2393 long=3857 epochs=1\n")
    assert (b.log, b.log_line, b.unit, b.code_line) == ("train.log", 1, "train_gpt.py", 10)
    assert dict(b.values) == {"r": 0, "a": 2393, "b": 3857, "args.ttt_epochs": 1}
    assert b.where == "train.log:1"


def test_percent_format_and_format_calls_bind():
    got = bound("step:12/100 loss:2.5000\nttt=True lr=0.002\n")
    assert [(b.code_line, dict(b.values)) for b in got] == [
        (11, {"a": 12, "b": 100, "loss": 2.5}),
        (12, {"args.ttt_enabled": True, "loss": 0.002}),
    ]


def test_print_of_several_arguments_joins_them_with_spaces():
    [b] = bound("final 1.2345\n")
    assert b.code_line == 13 and dict(b.values) == {"loss": 1.2345}


def test_typed_holes_reject_other_text():
    assert bound("step:twelve/100 loss:2.5000\n") == []
    assert bound("nothing the code prints\n") == []


def test_a_line_two_prints_can_write_is_a_tie():
    got = bound("a:7\n")
    assert sorted(b.code_line for b in got) == [14, 15] and {b.ties for b in got} == {2}


def test_source_dump_is_not_bound():
    log = CODE + "=" * 100 + "\nttt:rank1 short=1 long=2 epochs=3\n"
    lines = [b.log_line for b in bound(log)]
    assert lines == [len(CODE.splitlines()) + 2]


def test_template_index_uses_bounded_words():
    index = build_index(units())
    assert "ttt" in index.by_anchor            # `ttt:rank{r}`: `ttt` is bounded by the start and `:`
    assert "rank" not in index.by_anchor       # `rank` runs into the hole `{r}`


def test_find_dump_after_a_source_code_header():
    log = ("=" * 100 + "\nHyperparameters:\n  lr: 0.1\n" + "=" * 100 + "\nSource code:\n" + "=" * 100 + "\n"
           + CODE + "=" * 100 + "\nstep:1/2 loss:1.0000\n")
    dump = find_dump(log, "train.log")
    assert dump is not None and dump.start == 7 and dump.text == CODE
    assert find_dump("step:1/2 loss:1.0000\n" * 10, "train.log") is None


def test_first_difference_ignores_trailing_space_and_line_ends():
    assert first_difference(CODE, CODE.replace("\n", "  \r\n")) is None
    line, dumped, shipped = first_difference(CODE.replace('"1"))', '"3"))'), CODE)
    assert line == 5 and '"3"' in dumped and '"1"' in shipped


def test_printed_setting_outranks_the_readme(tmp_path: Path):
    from harness.scan.config import resolve_settings

    readme = "```bash\nTTT_ENABLED=1 torchrun train_gpt.py\n```\n"
    root = materialise(folder({"train_gpt.py": CODE, "README.md": readme,
                               "train.log": "ttt=False lr=0.002\n"}, "x"), tmp_path)
    setting = resolve_settings(AuditContext(Submission(root, "x")))["TTT_ENABLED"]
    assert setting.effective is False
    assert setting.source == "log train.log:1 (`ttt=False lr=0.002`)"


def test_rescore_reported_from_the_second_pass_is_high_confidence():
    rule = rule_by_id("TTT-NO-RESCORE")
    [f] = run_example(rule, folder(two_passes("legal_ttt", "final_ttt_lora"), "x"))
    assert (f.severity, f.confidence) == ("error", "high")
    assert "train_seed42.log:" in f.message and "final_ttt_lora" in f.message
    [g] = run_example(rule, folder(two_passes("legal_ttt", "diagnostic post ttt rescore"), "x"))
    assert (g.severity, g.confidence) == ("info", "high") and "diagnostic" in g.message


def test_rescore_without_a_log_stays_needs_review():
    rule = rule_by_id("TTT-NO-RESCORE")
    files = two_passes("legal_ttt", "final_ttt_lora")
    [f] = run_example(rule, folder({"train_gpt.py": files["train_gpt.py"]}, "x"))
    assert (f.severity, f.confidence) == ("error", "low")
