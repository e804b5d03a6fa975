"""harness.scan.train_after: training data read after the training loop ends."""

from __future__ import annotations

from pathlib import Path

from harness.context import AuditContext
from harness.scan.train_after import train_data_after_training
from harness.submission import Submission

LOADER = '''import glob
import os


class Hyperparameters:
    train_files = os.path.join("./data", "fineweb_train_*.bin")


class ShuffledLoader:
    def __init__(self, h):
        self.files = sorted(glob.glob(h.train_files))

    def next_batch(self):
        return self.files[0]


def collect_hessians(model, loader, n):
    return [model(loader.next_batch()) for _ in range(n)]
'''


def late(tmp_path: Path, main: str) -> list:
    root = tmp_path / "records" / "track_10min_16mb" / "2026-04-20_X"
    root.mkdir(parents=True)
    (root / "train_gpt.py").write_text(LOADER + main, encoding="utf-8")
    return train_data_after_training(AuditContext(Submission(root, root.name)))


def test_calibration_through_a_serialize_helper_and_a_loader_class(tmp_path):
    reads = late(tmp_path, '''

def train_model(h, model, opt):
    loader = ShuffledLoader(h)
    for step in range(10):
        model(loader.next_batch()).backward()
        opt.step()


def serialize(h, model):
    calib = ShuffledLoader(h)
    return collect_hessians(model, calib, 64)


def train_and_eval(h, model, opt):
    train_model(h, model, opt)
    serialize(h, model)
''')
    assert len(reads) == 1
    read = reads[0]
    assert (read.function, read.after_line, read.line) == ("train_and_eval", 34, 11)
    assert read.via == ("serialize() line 35", "ShuffledLoader() line 29")
    assert "glob.glob(h.train_files)" in read.text


def test_warmup_then_rebuilt_loader_then_loop_is_training(tmp_path):
    """A loader rebuilt between the warmup loop and the main loop is read by the main loop: not late."""
    assert late(tmp_path, '''

def main(h, model, opt):
    loader = ShuffledLoader(h)
    for _ in range(20):
        model(loader.next_batch()).backward()
    loader = ShuffledLoader(h)
    while True:
        model(loader.next_batch()).backward()
        opt.step()
    print(f"train files: {h.train_files}")
    return model
''') == []


def test_one_line_code_after_the_loop_on_the_same_line(tmp_path):
    reads = late(tmp_path, '''

def main(h, model, opt):
    loader = ShuffledLoader(h)
    for _ in range(9): model(loader.next_batch()).backward(); opt.step()
    model.eval(); hs = collect_hessians(model, ShuffledLoader(h), 8)
''')
    assert [(r.function, r.line, r.via) for r in reads] == [("main", 11, ("ShuffledLoader() line 24",))]


def test_literal_glob_inline_after_the_loop(tmp_path):
    reads = late(tmp_path, '''

def main(model, opt, data_dir):
    loader = ShuffledLoader(None)
    for _ in range(9):
        model(loader.next_batch()).backward()
    files = sorted(glob.glob(data_dir + "/fineweb_train_*.bin"))
    return collect_hessians(model, files, 8)
''')
    assert [r.line for r in reads] == [25]


def test_self_generated_calibration_and_evaluation_are_not_late_reads(tmp_path):
    """Calibrating on the model's own samples reads no training data; an eval function reading training
    data is EVAL-NO-TRAIN-DATA's business."""
    assert late(tmp_path, '''

def eval_val_ngram(h):
    return sorted(glob.glob(h.train_files))


def main(h, model, opt):
    loader = ShuffledLoader(h)
    for _ in range(9):
        model(loader.next_batch()).backward()
    hessians = collect_hessians(model, model.generate(64), 8)
    return hessians, eval_val_ngram(h)
''') == []


def test_calibration_in_a_branch_the_settings_switch_off_does_not_run(tmp_path):
    """`GPTQ_AR_SELFGEN=1` by default: the training-data calibration is the `else` branch, off."""
    main = '''

class Settings:
    gptq_ar_selfgen = bool(int(os.environ.get("GPTQ_AR_SELFGEN", "1")))


def main(h, s, model, opt):
    loader = ShuffledLoader(h)
    for _ in range(9):
        model(loader.next_batch()).backward()
    if s.gptq_ar_selfgen:
        calib = model.generate(64)
    else:
        calib = ShuffledLoader(h)
    return collect_hessians(model, calib, 8)
'''
    assert late(tmp_path, main) == []


def test_before_the_in_force_date_the_finding_names_where_the_date_comes_from():
    import datetime as dt

    from harness.rule_examples import run_example
    from rules.base import log
    from rules.gptq_in_train_budget import NO_RESERVE, GptqInTrainBudget

    early = log(NO_RESERVE, "before", options={"rules_as_of": dt.date(2026, 3, 22)})
    [finding] = run_example(GptqInTrainBudget, early)
    assert finding.severity == "warning" and finding.source_weight == "MAINT"
    assert "in force from 2026-03-23, per the maintainers' invalid list in #677/#1017" in finding.message
    on_the_day = log(NO_RESERVE, "on the day", options={"rules_as_of": dt.date(2026, 3, 23)})
    assert [f.severity for f in run_example(GptqInTrainBudget, on_the_day)] == ["error"]


def test_a_loader_built_from_a_config_dict_key(tmp_path):
    reads = late(tmp_path, '''

def main(cfg, model, opt):
    loader = ShuffledLoader(None)
    for _ in range(9):
        model(loader.next_batch()).backward()
    calib = sorted(glob.glob(cfg["train_pattern"]))
    return collect_hessians(model, calib, 256)
''')
    assert [(r.function, r.line) for r in reads] == [("main", 25)]


def test_a_settings_mapping_that_names_the_shards_is_not_training_data(tmp_path):
    """A dict of settings holding the train path, and names reused by unrelated loops over it."""
    assert late(tmp_path, '''

CONF = {"train_files": "./data/fineweb_train_*.bin", "batch_size": 64}
BATCH = CONF["batch_size"]


def main(h, model, opt):
    hparams = {k: v for k, v in vars(h).items()}
    hparams["train_files"] = h.train_files
    for k, v in sorted(hparams.items()):
        print(k, v)
    loader = ShuffledLoader(h)
    for _ in range(9):
        model(loader.next_batch()).backward()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return state, BATCH * 2
''') == []
