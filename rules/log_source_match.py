"""LOG-SOURCE-MATCH: the source a training log prints is the script the folder ships."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.logdump import MAX_DUMPS_ANALYSED, compare_dumps
from harness.report import Finding
from rules.base import Citation, Rule, folder

SCRIPT = '''import os


def main():
    lr = float(os.environ.get("LR", "0.02"))
    print(f"lr:{lr}")


if __name__ == "__main__":
    main()
'''

RAN = SCRIPT.replace('"0.02"', '"0.05"')


def _log(source: str) -> str:
    return source + "=" * 100 + "\nlr:0.05\nfinal_int8_zlib_roundtrip val_loss:2.0700 val_bpb:1.2200\n"


def _header_log(source: str) -> str:
    return ("=" * 100 + "\nHyperparameters:\n  lr: 0.02\n" + "=" * 100 + "\nSource code:\n" + "=" * 100 + "\n"
            + source + "\n" + "=" * 100 + "\nlr:0.02\n")


class LogSourceMatch(Rule):
    ID = "LOG-SOURCE-MATCH"
    TITLE = "The source printed in the logs is the shipped script"
    CATEGORY = "hygiene"
    SEVERITY = "warning"
    CONFIDENCE = "high"
    READS = ("logs",)
    CITATION = Citation("README (reproducibility), community practice of logging the script's source",
                        "we will verify the top leaderboard entries over time. Any non-reproducible results can "
                        "be disqualified", "COMM")
    RATIONALE = ("Most records print their whole script at the top of each training log, so the log shows the "
                 "code that produced its score. When that dump differs from the shipped train_gpt.py (compared "
                 "line by line, trailing spaces ignored, and with a packed script's unpacked code too), the "
                 "claimed score came from other code: the finding names the first differing line, and the "
                 "dump of the first top-level log that differs is analysed by the TTT rules as its own unit "
                 "(`<log> (source dump)`). When the shipped script is missing or empty, the dump is the code "
                 "every rule analyses. Logs in subfolders (ablations, studies) only draw a note.")
    LEGAL = [
        folder({"train_gpt.py": SCRIPT, "train_seed42.log": _log(SCRIPT)}, "the log dumps the shipped script"),
        folder({"train_gpt.py": SCRIPT.replace("\n", "  \r\n"), "train_seed42.log": _header_log(SCRIPT)},
               "a `Source code:` header dump; trailing spaces and CRLF line ends do not count"),
        folder({"train_gpt.py": SCRIPT, "train_seed42.log": "step:1/10 train_loss:9.0\n"},
               "a log without a source dump"),
    ]
    ILLEGAL = [
        folder({"train_gpt.py": SCRIPT, "train_seed42.log": _log(RAN)},
               "the log's dump differs from train_gpt.py at its line 5", 5, file="train_seed42.log",
               severity="warning"),
        folder({"train_gpt.py": "", "train_seed42.log": _log(RAN)},
               "an empty shipped script: the dump is the code analysed", 1, file="train_seed42.log",
               severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        checks = compare_dumps(ctx)
        analysed = 0
        groups: dict[tuple, list] = {}
        for c in checks:
            if c.state != "same":
                groups.setdefault((c.state, c.dump.text), []).append(c)
        for (state, _), group in groups.items():
            c = group[0]
            also = [g.dump.log for g in group[1:]]
            others = f" (so do {', '.join(also[:5])}{' ...' if len(also) > 5 else ''})" if also else ""
            top = "/" not in c.dump.log
            if state in ("no-script", "empty-script"):
                what = "no training script is shipped" if state == "no-script" else f"the shipped {c.script} is empty"
                yield self.finding(f"{what}, while {c.dump.log} prints the source of the run that produced it at "
                                   f"lines {c.dump.start}-{c.dump.end}{others}; the rules analyse that dump as "
                                   f"`{c.dump.log} (source dump)`", c.dump.log, c.dump.start,
                                   end_line=c.dump.end)
                continue
            note = ""
            if top and analysed < MAX_DUMPS_ANALYSED:
                analysed += 1
                note = f"; the TTT rules analyse this dump too, as `{c.dump.log} (source dump)`"
            line = c.dump.start + c.line - 1
            yield self.finding(
                f"the source printed in {c.dump.log}{others} differs from {c.script} from line {c.line} "
                f"(logged `{c.dumped.strip()[:100]}`, shipped `{c.shipped.strip()[:100]}`): the logged run used "
                f"other code than the folder ships{note}"
                + ("" if top else "; this log is in a subfolder (an ablation or study), so this is a note"),
                c.dump.log, line, severity="warning" if top else "info",
                evidence=f"{c.dump.log}:{line}: {c.dumped.strip()[:160]}\n{c.script}:{c.line}: "
                         f"{c.shipped.strip()[:160]}")
