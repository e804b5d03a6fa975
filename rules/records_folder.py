"""RECORDS-FOLDER: the folder holds what a record needs, and its script is readable Python."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.parse import ParseFailure, parse_source
from harness.report import Finding
from harness.submission import LoadError
from rules.base import Citation, Rule, code, folder

GOOD_JSON = '{"name": "x", "author": "a", "github_id": "a", "val_bpb": 1.2}\n'
GOOD_LOG = "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n"


class RecordsFolder(Rule):
    ID = "RECORDS-FOLDER"
    TITLE = "Records folder is complete and its script parses"
    CATEGORY = "hygiene"
    SEVERITY = "error"
    READS = ("folder",)
    CITATION = Citation("README, Submission process",
                        "this must successfully compile and run within the records folder. Broken scripts will "
                        "not be accepted.", "README")
    RATIONALE = ("A record PR adds one folder with README.md, submission.json, the training log(s) the script "
                 "wrote and train_gpt.py. A missing or empty script, or one that does not parse, cannot be "
                 "reproduced. Python 3.12 syntax is accepted: the parse uses libcst where `ast` of the running "
                 "interpreter is older.")
    LEGAL = [
        folder({"train_gpt.py": "print('hi')\n", "README.md": "# r\n", "submission.json": GOOD_JSON,
                "train_seed1.log": GOOD_LOG}, "complete folder"),
        folder({"train_gpt.py": "x = f\"{'a' + f'{1}'}\"\n", "README.md": "# r\n", "submission.json": GOOD_JSON,
                "train.log": GOOD_LOG}, "Python 3.12 nested f-string quotes parse"),
    ]
    ILLEGAL = [
        folder({"README.md": "# r\n", "submission.json": GOOD_JSON, "train.log": GOOD_LOG}, "no training script"),
        folder({"train_gpt.py": "", "README.md": "# r\n", "submission.json": GOOD_JSON, "train.log": GOOD_LOG},
               "empty train_gpt.py", 1, file="train_gpt.py"),
        code("def f(:\n    pass\n", "syntax error", 1),
        folder({"train_gpt.py": "print(1)\n", "submission.json": GOOD_JSON}, "no README and no log",
               severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        if sub.single_file:
            names = list(sub.files)
        else:
            names = sub.script_names
            if not names:
                yield self.finding("no training script: the folder has no train_gpt.py (nor train*.py)")
            elif "train_gpt.py" not in sub.files:
                yield self.finding(f"no train_gpt.py; the training script appears to be {names[0]}",
                                   names[0], severity="warning")
            missing = [n for n in ("README.md",) if n not in sub.files]
            if sub.submission_json_name is None:
                missing.append("submission.json")
            if not sub.log_names:
                missing.append("a training log (train*.log)")
            if missing:
                yield self.finding("missing: " + ", ".join(missing), severity="warning")
            for link in sub.symlinks:
                yield self.finding(f"{link} is a symbolic link; it was not followed", link, severity="warning")
            for problem in sub.problems:
                yield self.finding(problem.message, problem.file)
            for parsed in sub.logs:
                for message in parsed.problems:
                    yield self.finding(message, parsed.name, severity="warning")
        for name in names:
            try:
                text = sub.read_source(name)
            except LoadError as exc:
                yield self.finding(str(exc), name, 1)
                continue
            if not text.strip():
                yield self.finding(f"{name} is empty", name, 1)
                continue
            try:
                parse_source(text, name)
            except ParseFailure as exc:
                yield self.finding(f"{name} does not parse: {exc.message}", name, exc.line or 1,
                                   evidence=exc.snippet)
