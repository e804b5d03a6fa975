"""SIZE-CAP-16MB: code bytes + compressed model bytes < 16,000,000 on every seed."""

from __future__ import annotations

from collections.abc import Iterable

from harness.codebytes import seed_sizes
from harness.context import AuditContext
from harness.coverage import Coverage, checked, names, not_checked
from harness.limits import SIZE_CAP_BYTES
from harness.measure import _num, backing_logs
from harness.report import Finding
from rules._samples import line_of, new_log, old_log, submission_json
from rules.base import Citation, Rule, folder

CAP = SIZE_CAP_BYTES
ROUNDED_SLACK = 5_000          # `artifact:15.92MB` lines are rounded to 10 kB


def artifact_files(sub) -> list[str]:
    """Compressed model blobs shipped in the folder (`final_model*.ptz` and kin)."""
    return [n for n in sub.files if n.endswith(".ptz")]


def _fmt(n: int) -> str:
    return f"{n:,}"


SMALL = old_log(model=15_815_847, code=47_642)
BIG = old_log(model=15_990_000, code=47_642)
OVER_MODEL = 15_930_000
DECODE = "print('the real script')\n" * 4000      # 100,000 bytes
EXEC_LOG = new_log(tokenizer="sp8192", code=len(DECODE.encode()), code_raw=None, model=OVER_MODEL)
EXEC_LOG_BAD = new_log(tokenizer="sp8192", code=74, code_raw=None, model=OVER_MODEL)


class SizeCap16MB(Rule):
    ID = "SIZE-CAP-16MB"
    TITLE = "Artifact (code + compressed model) is under 16,000,000 bytes on every seed"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "run")
    READS = ("logs", "submission.json")
    CITATION = Citation("README, FAQ",
                        "The cap is decimal 16MB, i.e. 16,000,000 total bytes, not 16 MiB / 16,777,216 bytes.",
                        "README")
    RATIONALE = ("The submission artifact is code bytes plus compressed model bytes, checked on every seed. "
                 "Code bytes are the shipped script's bytes, plus any sibling file it execs; records from "
                 "2026-04-10 count a minified lzma/brotli+base85 self-extracting form instead, which golfaudit "
                 "rebuilds and accepts only when it matches the logged count. Model bytes come from the log "
                 "(`Total submission size` minus `Code size`) or from a shipped artifact file. The larger of "
                 "the log's own total and model + counted code must stay under the cap.")
    LEGAL = [
        folder({"train_gpt.py": "x = 1\n" * 10, "train_seed1337.log": SMALL}, "15,863,489 bytes"),
        folder({"train_gpt.py": "exec(open(__file__.replace('train_gpt.py', 'dec.py')).read())\n",
                "dec.py": "print(1)\n", "train_seed42.log": new_log(tokenizer="sp8192", code=74, code_raw=None)},
               "a small exec'd sibling stays under the cap"),
        folder({"train_gpt.py": "x = 1\n", "submission.json": submission_json(1.2, bytes_total=15_900_000)},
               "no log: the JSON's own total is under the cap"),
    ]
    ILLEGAL = [
        folder({"train_gpt.py": "x = 1\n", "train_seed1337.log": BIG}, "the log's own total is over the cap",
               line_of(BIG, "Total submission size int8+zlib"), file="train_seed1337.log"),
        folder({"train_gpt.py": "exec(open(__file__.replace('train_gpt.py', 'train_gpt_decode.py')).read())\n",
                "train_gpt_decode.py": DECODE, "train_seed42.log": EXEC_LOG_BAD},
               "the exec'd sibling counts: 74 + 100,000 code bytes push the total over",
               line_of(EXEC_LOG_BAD, "Total submission size"), file="train_seed42.log"),
        folder({"train_gpt.py": "x = 1\n", "train_seed42.log": EXEC_LOG},
               "over the cap as logged (sibling counted by the log)",
               line_of(EXEC_LOG, "Total submission size"), file="train_seed42.log"),
        folder({"train_gpt.py": "x = 1\n", "submission.json": submission_json(1.2, bytes_total=16_071_321)},
               "no log: the JSON's own total is over the cap", 1, file="submission.json"),
        folder({"train_gpt.py": "x = 1\n" * 100, "final_model.int8.ptz": "z" * 16_000_000},
               "no log: the shipped artifact file plus code is over the cap", file="final_model.int8.ptz"),
    ]

    def coverage(self, ctx: AuditContext) -> Coverage:
        sub = ctx.submission
        sizes = seed_sizes(sub, ctx.code_bytes)
        if sizes:
            return checked(f"the size lines of {names([s.log.name for s in sizes])}")
        blobs = artifact_files(sub)
        if blobs:
            return checked(f"the shipped artifact {max(blobs, key=sub.size)} and the code")
        data = sub.submission_json.data if sub.submission_json_name else None
        if isinstance(data, dict) and any(_num(data.get(k)) is not None for k in ("bytes_total", "artifact_bytes_max")):
            return checked(f"the byte count {sub.submission_json_name} claims (no log prints a size)")
        return not_checked("no log prints a submission size, no artifact file is shipped and submission.json "
                           "gives no byte count")

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        cb = ctx.code_bytes
        sizes = seed_sizes(sub, cb)
        backing = {id(log) for log in backing_logs(sub)}
        code_note = ""
        if cb is not None:
            parts = [f"raw {_fmt(cb.raw)} ({' + '.join(cb.files)})"]
            for kind, size in cb.packed.items():
                parts.append(f"packed/{kind} {_fmt(size)}")
            if cb.logged:
                parts.append("logged " + "/".join(_fmt(v) for v in cb.logged))
            code_note = f"code bytes: {', '.join(parts)}; binding: {cb.binding}"
        unsure = cb is not None and cb.logged_packed and cb.binding == "raw"
        for s in sizes:
            if s.total < CAP and not (s.rounded and s.total + ROUNDED_SLACK >= CAP):
                continue
            log = s.log
            where = log.total_bytes or log.model_bytes
            pieces = []
            if s.logged_total is not None:
                pieces.append(f"the log prints {_fmt(s.logged_total)}")
            if s.model is not None:
                pieces.append(f"model {_fmt(s.model)} + counted code {_fmt(s.code_counted)} = "
                              f"{_fmt(s.model + s.code_counted)}")
            message = (f"{log.name}: artifact {_fmt(s.total)} bytes, not under {_fmt(CAP)} ("
                       + "; ".join(pieces) + (f"; {code_note}" if code_note else "") + ")")
            over_as_logged = s.logged_total is not None and s.logged_total >= CAP and not s.rounded
            if id(log) not in backing:
                yield self.finding(message + "; this log backs no claimed score", log.name, where.line,
                                   severity="warning", evidence=where.text)
            elif s.rounded and s.total < CAP + ROUNDED_SLACK:
                yield self.finding(message + "; the log rounds to 10 kB", log.name, where.line,
                                   severity="warning", evidence=where.text)
            elif unsure and not over_as_logged:
                yield self.finding(message + "; the logs count a packed form golfaudit could not rebuild",
                                   log.name, where.line, confidence="low", evidence=where.text)
            else:
                yield self.finding(message, log.name, where.line, evidence=where.text)
        if not sizes:
            yield from self._from_json(sub, cb)

    def _from_json(self, sub, cb) -> Iterable[Finding]:
        blobs = artifact_files(sub)
        if blobs:
            name = max(blobs, key=sub.size)
            total = sub.size(name) + (cb.binding_bytes if cb is not None else 0)
            if total >= CAP:
                yield self.finding(f"shipped artifact {name} ({_fmt(sub.size(name))} bytes) + code "
                                   f"{_fmt(total - sub.size(name))} = {_fmt(total)} bytes, not under {_fmt(CAP)}",
                                   name)
            return
        data = sub.submission_json.data or {}
        claimed = [_num(data.get(k)) for k in ("bytes_total", "artifact_bytes_max")]
        claimed = [int(v) for v in claimed if v is not None]
        name = sub.submission_json_name
        if claimed and max(claimed) >= CAP:
            yield self.finding(f"{name} itself reports {_fmt(max(claimed))} bytes, not under {_fmt(CAP)}",
                               name, 1)
        elif not claimed and sub.logs:
            yield self.finding("no log prints a submission size, so the 16 MB cap could not be checked",
                               severity="info")
