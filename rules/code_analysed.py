"""CODE-ANALYSED: a verdict of `legal` is a claim about code that was read and analysed."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.coverage import Coverage, checked, code_read, names
from harness.report import Finding
from rules._samples import old_log
from rules.base import Citation, Rule, code, folder


class CodeAnalysed(Rule):
    ID = "CODE-ANALYSED"
    TITLE = "The training code was read and analysed"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "low"
    READS = ("folder",)
    CITATION = Citation("README, Submission process",
                        "this must successfully compile and run within the records folder. Broken scripts will "
                        "not be accepted.", "README")
    RATIONALE = ("The legality rules read the training code. When there is none to read (no script, an empty "
                 "one, one that does not parse or nests deeper than Python's parser allows, a symbolic link "
                 "golfaudit does not follow, or packing it cannot undo), those rules judged nothing, and a "
                 "`legal` verdict would be a green light for code nobody analysed. This low-confidence legality "
                 "error makes the verdict needs-review and says why nothing could be analysed and what to do. "
                 "Where a log prints the source of its run, the rules analyse that dump in place of the missing "
                 "script; it still cannot be tied to what the folder ships, so the verdict stays needs-review. "
                 "A script that cannot be read at all is verdict `error`. RECORDS-FOLDER reports the broken "
                 "folder itself (eligibility).")
    LEGAL = [
        code("print('train')\n", "a script that parses is analysed"),
        folder({"train_gpt.py": "print('train')\n", "submission.json": "{", "train.log": "garbage\n"},
               "broken submission.json and log: the code was still analysed"),
    ]
    ILLEGAL = [
        folder({"README.md": "# r\n", "train.log": old_log()}, "no training script: nothing was analysed"),
        code("", "an empty script", 1),
        folder({"train_gpt.py": "", "train.log": old_log()}, "an empty script whose log prints the source: the "
               "rules read the dump, but no shipped code was analysed", 1, file="train_gpt.py"),
        code("import torch\ndef main(:\n    pass\n", "a syntax error: nothing was analysed", 2),
        code("x = " + "(" * 300 + ")" * 300 + "\n", "nesting deeper than Python's parser allows", 1),
    ]

    def coverage(self, ctx: AuditContext) -> Coverage:
        read = code_read(ctx)
        if read.analysed:
            return checked(f"analysed {names(list(read.units))}")
        if read.stand_in:
            return checked(f"analysed {names(list(read.stand_in))} in place of the shipped code")
        return checked("looked for the training code")

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        read = code_read(ctx)
        if read.analysed:
            return
        if read.stand_in:
            yield self.finding(f"no shipped code was analysed: {read.why_none}. The rules read the source printed "
                               f"in {names(list(read.stand_in))} instead, which golfaudit cannot tie to a script "
                               f"in the folder, so the verdict cannot be legal; {read.todo}", read.file, read.line)
            return
        yield self.finding(f"nothing was analysed: {read.why_none}. The rules that read code did not run, so "
                           f"the verdict cannot be legal; {read.todo}", read.file, read.line)
