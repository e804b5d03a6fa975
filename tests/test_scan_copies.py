"""Weights trained on validation tokens, copied out before the module is deleted or restored, are followed to
where the copy goes: serialization → PREQUANT-TTT-ON-VAL, scoring → TTT-SCORE-FIRST; no copy → a warm-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules._ttt import MAIN, PRELUDE
from tests.test_scan_gaps import findings_of

TRAIN = PRELUDE + '''import copy


def quantize_state_dict(sd):
    return {k: v.to(torch.int8) for k, v in sd.items()}


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    val_tokens = load_shards(args.val_files)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for i in range(0, val_tokens.numel() - 1, 2048):
        x = val_tokens[i:i + 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
{tail}
''' + MAIN

COPIES = {
    "state_dict": "    kept = model.state_dict()\n",
    "clone_dict": "    kept = {k: v.detach().clone() for k, v in model.state_dict().items()}\n",
    "deepcopy": "    kept = copy.deepcopy(model).state_dict()\n",
}
DROPS = {
    "del": "    del model, opt\n",
    "restore": "    model.load_state_dict(initial)\n",
}


def _rules(fs: list) -> set[tuple[str, str]]:
    return {(f.rule, f.severity) for f in fs if f.severity in ("error", "warning")}


@pytest.mark.parametrize("drop", sorted(DROPS))
@pytest.mark.parametrize("copy", sorted(COPIES))
def test_copy_reaching_serialization_is_prequant(tmp_path: Path, copy: str, drop: str):
    tail = COPIES[copy] + DROPS[drop] + ('    torch.save(quantize_state_dict(kept), "final_model.int8.pt")\n'
                                         '    fresh = torch.nn.Linear(8, 8)\n'
                                         '    fresh.load_state_dict(torch.load("final_model.int8.pt"))\n'
                                         '    print(eval_val(fresh, val_tokens))')
    rules = _rules(findings_of(TRAIN.replace("{tail}", tail), tmp_path))
    assert ("PREQUANT-TTT-ON-VAL", "error") in rules and not any(r == "TTT-WARMUP-ON-VAL" for r, _ in rules)


@pytest.mark.parametrize("drop", sorted(DROPS))
def test_copy_loaded_into_another_module_and_scored_is_score_first(tmp_path: Path, drop: str):
    tail = ("    other = torch.nn.Linear(8, 8)\n    other.load_state_dict(model.state_dict())\n" + DROPS[drop] +
            "    print(eval_val(other, val_tokens))")
    rules = _rules(findings_of(TRAIN.replace("{tail}", tail), tmp_path))
    assert ("TTT-SCORE-FIRST", "error") in rules and not any(r == "TTT-WARMUP-ON-VAL" for r, _ in rules)


@pytest.mark.parametrize("drop", sorted(DROPS))
def test_no_copy_or_an_unused_copy_stays_a_warm_up(tmp_path: Path, drop: str):
    for extra in ("", "    unused = model.state_dict()\n"):
        fresh = "    model = torch.nn.Linear(8, 8)\n" if drop == "del" else ""
        tail = extra + DROPS[drop] + fresh + "    print(eval_val(model, val_tokens))"
        rules = _rules(findings_of(TRAIN.replace("{tail}", tail), tmp_path / f"{drop}{len(extra)}"))
        assert rules == {("TTT-WARMUP-ON-VAL", "warning")}, rules
