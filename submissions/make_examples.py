"""Regenerate the example records folders under submissions/ (`python submissions/make_examples.py`).

Each folder mirrors records/<track>/<date_name>/ of openai/parameter-golf; the logs use the real line formats
(rules/_samples.py). The clean folder's train_gpt.py is the source of truth for the others' scripts.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rules._samples import old_log, submission_json  # noqa: E402

TEN = HERE / "track_10min_16mb"
CLEAN = TEN / "2026-04-20_TinyGPT_ScoreFirstTTT"
SCRIPT = (CLEAN / "train_gpt.py").read_text(encoding="utf-8")
CODE = len(SCRIPT.encode("utf-8"))
SEEDS = {1337: (1.19218812, 2.01297731), 42: (1.19302215, 2.01438559), 2025: (1.19155907, 2.01191523)}
MODEL = {1337: 15_811_204, 42: 15_809_877, 2025: 15_812_330}


def readme(title: str, body: str) -> str:
    return f"# {title}\n\n{body}\n\nRun: `torchrun --standalone --nproc_per_node=8 train_gpt.py`\n"


def write(folder: Path, files: dict[str, str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def seed_logs(seeds=SEEDS, model=MODEL, **kw) -> dict[str, str]:
    return {f"train_seed{s}.log": old_log("legal_ttt", bpb, loss, seed=s, model=model[s], code=CODE,
                                          eval_ms=412_907, **kw) for s, (bpb, loss) in seeds.items()}


def seed_json(seeds=SEEDS, model=MODEL, date="2026-04-20", **more) -> str:
    mean = round(sum(b for b, _ in seeds.values()) / len(seeds), 8)
    results = {str(s): {"val_bpb": b, "val_loss": loss, "artifact_bytes": model[s] + CODE}
               for s, (b, loss) in seeds.items()}
    return submission_json(mean, results, date=date, track="10min_16mb",
                           bytes_total=max(model[s] for s in seeds) + CODE,
                           blurb="Tiny GPT, int8+zlib, score-first TTT (golfaudit example).", **more)


def main() -> None:
    base = {"train_gpt.py": SCRIPT}
    clean_readme = readme("Tiny GPT + score-first TTT", "Legal example: 3 seeds, every number in submission.json "
                          "matches the logs, artifact under 16,000,000 bytes, training and eval within 600 s.")
    write(CLEAN, {**base, "README.md": clean_readme, "submission.json": seed_json(), **seed_logs()})

    big = {s: m + 190_000 for s, m in MODEL.items()}
    write(TEN / "2026-04-21_Oversize", {**base, "README.md": readme("Oversize", "Illegal: the int8+zlib model is "
                                        "~16.0 MB, so code + model exceed 16,000,000 bytes on every seed."),
                                        "submission.json": seed_json(model=big, date="2026-04-21"),
                                        **seed_logs(model=big)})

    lying = seed_json(date="2026-04-22").replace('"val_bpb": 1.19225645', '"val_bpb": 1.1791')
    lying = lying.replace(f'"artifact_bytes": {MODEL[42] + CODE}', '"artifact_bytes": 15700000')
    write(TEN / "2026-04-22_LogContradictsJson", {**base, "README.md": readme("Log contradicts JSON",
                                                 "Not eligible: submission.json claims 1.1791, lower than any "
                                                 "bpb its logs print, and a smaller artifact."),
                                                 "submission.json": lying,
                                                 **seed_logs()})

    write(TEN / "2026-04-23_OverTrainBudget", {**base, "README.md": readme("Over the training budget",
                                              "Illegal: MAX_WALLCLOCK_SECONDS=660, training stopped at 655 s."),
                                              "submission.json": seed_json(date="2026-04-23"),
                                              **seed_logs(train_ms=655_112, step=15040)})

    one = {1337: SEEDS[1337]}
    write(TEN / "2026-04-30_SingleSeed", {**base, "README.md": readme("Single seed", "Not eligible: one run only."),
                                         "submission.json": seed_json(one, date="2026-04-30"),
                                         **seed_logs(one)})

    # no script, no log, no README: nothing to analyse, so the verdict is needs-review, never legal
    write(TEN / "2026-04-24_MissingFiles", {"submission.json": seed_json(date="2026-04-24")})

    write(HERE / "track_non_record_16mb" / "2026-04-25_EmptyScript",
          {"train_gpt.py": "", "README.md": readme("Empty script", "Needs review: train_gpt.py is empty, so no "
                                                                 "code could be analysed."),
           "submission.json": submission_json(1.3, date="2026-04-25", track="non_record_16mb"),
           "train.log": old_log(bpb=1.3, loss=2.19, code=0)})


if __name__ == "__main__":
    main()
