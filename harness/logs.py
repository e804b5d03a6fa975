"""Parse parameter-golf training logs (EVAL_INTERNALS §4).

Logs begin with a dump of the script's source, may hold several appended runs, may carry an epoch
timestamp prefix, and print diagnostic scores beside the reported one. Every pattern is anchored at the
start of a line (after the optional timestamp) and the **last** match wins. Binary junk (NUL bytes,
invalid UTF-8) is tolerated; huge logs are read head and tail only.

Parse time is linear in the log's size whatever its line count: each pattern is tried only at the start of
lines that hold its keyword (found with `str.find`), never at every line start, and line numbers come from
a monotone table of checkpoints instead of one counting pass per pattern.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TS = r"^(?:\d{10}\.\d+ )?"
FINAL = re.compile(
    TS + r"(?P<label>final_[\w\-.]+?|legal_ttt(?:_exact)?|quantized(?:_[a-z_]+)?|diagnostic [a-z \-]+?"
    r"|pre-quantization post-ema|DIAGNOSTIC post_ema)(?: stride:\d+)? (?:sliding )?val_loss:(?P<loss>[\d.]+)"
    r" (?:sliding )?val_bpb:(?P<bpb>[\d.]+)(?P<rest>.*)$", re.M)
TOTAL = re.compile(TS + r"Total submission size(?: (?P<fmt>[\w+\-]+))?: (?P<bytes>\d+) bytes", re.M)
MODEL = re.compile(TS + r"Serialized model(?: (?P<fmt>[\w+\-]+))?: (?P<bytes>\d+) bytes", re.M)
CODE = re.compile(TS + r"Code size(?: \((?P<kind>compressed|uncompressed)\))?: (?P<bytes>\d+) bytes", re.M)
ALT_ARTIFACT = re.compile(r"^artifact:(?P<mb>[\d.]+)MB .*code:(?P<code>\d+)", re.M)
STOP = re.compile(TS + r"stopping_early: wallclock_cap train_time: ?(?P<ms>\d+)ms(?: step: ?(?P<step>\d+)/(?P<it>\d+))?",
                  re.M)
VAL_OLD = re.compile(r"^step:(?P<step>\d+)/(?P<it>\d+) val_loss:(?P<loss>[\d.]+) val_bpb:(?P<bpb>[\d.]+) "
                     r"train_time:(?P<ms>\d+)ms", re.M)
STEP_OLD = re.compile(r"^step:(?P<step>\d+)/(?P<it>\d+) (?:train_)?loss:(?P<loss>[\d.]+) "
                      r"(?:train_time:(?P<ms>\d+)ms|t:(?P<t>\d+)ms)", re.M)
STEP_NEW = re.compile(TS + r"(?P<step>\d+)/(?P<it>\d+) train_loss: (?P<loss>[\d.]+) train_time: (?P<min>[\d.]+)m", re.M)
VALTOK = re.compile(TS + r"(?:val_tokens: (?P<n1>\d+)|val_loader:shards pattern=\S+ tokens:(?P<n2>\d+))", re.M)
TRAIN_SHARDS = re.compile(TS + r"(?:train_shards: (?P<n1>\d+)|train_loader:dataset:\S+ train_shards:(?P<n2>\d+))", re.M)
TOTAL_EVAL = re.compile(TS + r"total_eval_time: ?(?P<s>[\d.]+)s", re.M)
GPTQ_RESERVE = re.compile(TS + r"gptq:reserving (?:(?P<s>[\d.]+)s|(?P<rms>\d+)ms from training budget), "
                          r"effective=(?P<ms>\d+)ms", re.M)
# calibration on data, timed: `GPTQ:collected 66 Hessians in 3.5s`, `gptq:calibrated 66 layers in 6.8s`,
# `gptq:loop-aware calibrated 68 layers in 7.1s`, `Hessians collected in 17.7s`,
# `GPTQ:collected 67 Hessians + 67 act_stats in 4.7s`
GPTQ_HESS = re.compile(TS + r"(?:GPTQ: ?collected \d+ Hessians(?: \+ \d+ [\w ]+?)?|gptq:(?:loop-aware )?calibrated "
                       r"\d+ layers|Hessians collected) in (?P<s>[\d.]+)s", re.M)
ARTIFACT_WALL = re.compile(TS + r"artifact_production_wallclock: (?P<s>[\d.]+)s", re.M)
EVAL_TIME = re.compile(r"eval_time: ?(?P<ms>\d+)ms")
HPARAM_HEAD = re.compile(TS + r"Hyperparameters:[ \t]*$", re.M)
HPARAM = re.compile(r"^(?:\d{10}\.\d+ )?  (?P<key>[a-z_][a-z0-9_]*): (?P<value>.*)$")
SEED_LINE = re.compile(TS + r"seed:(?P<n>\d+)[ \t]*$", re.M)
SEED_NAME = re.compile(r"seed[_-]?(\d+)", re.I)
SEED_NAME_LOOSE = re.compile(r"(?:^|[_\-])(\d{1,6})\.(?:log|txt)$", re.I)
TOKENIZER_LINE = re.compile(TS + r"val_bpb:enabled .*tokenizer_path=(?P<path>\S+)", re.M)
VAL_PATTERN = re.compile(TS + r"val_loader:shards pattern=(?P<path>\S+)", re.M)
TRAIN_DATASET = re.compile(TS + r"train_loader:dataset:(?P<path>\S+)", re.M)
VARIANT = re.compile(r"fineweb10B_(?P<v>sp\d+|byte\d+)(?P<caseops>_lossless_caps_caseops\w*)?|"
                     r"fineweb_(?P<tv>\d+)_bpe(?P<tcase>_lossless_caps_caseops\w*)?\.model|(?P<byte>pure_byte_260)")
MAX_WALL = re.compile(TS + r"max_wallclock_seconds: ?(?P<s>[\d.]+)", re.M)
# Any bits-per-byte number the log prints, whatever the label (`val_bpb:1.07`, `mix_bpb=0.9013`, `BPB: 0.82`,
# `BPB (EMA, stride=64): 0.97`): not line-anchored, so a score printed in an unknown format still counts.
ANY_BPB = re.compile(r"(?:bpb|BPB)\w*(?: ?\([^()\n]{0,60}\))?(?::\s?|=)(?P<v>\d+\.\d+)")

# A literal that every match of the pattern contains (one of them, for alternations): lines without it are
# never tried, so a log of a million empty lines costs one `str.find` per keyword, not a regex per line.
KEYWORDS: dict[re.Pattern, tuple[str, ...]] = {
    FINAL: ("val_bpb:",), TOTAL: ("Total submission size",), MODEL: ("Serialized model",),
    CODE: ("Code size",), ALT_ARTIFACT: ("artifact:",), STOP: ("stopping_early: wallclock_cap",),
    VAL_OLD: ("val_bpb:",), STEP_OLD: ("step:",), STEP_NEW: (" train_loss: ",),
    VALTOK: ("val_tokens: ", "val_loader:shards pattern="), TRAIN_SHARDS: ("train_shards",),
    TOTAL_EVAL: ("total_eval_time:",), GPTQ_RESERVE: ("gptq:reserving ",), GPTQ_HESS: ("GPTQ:collected ", "GPTQ: collected ", "calibrated ", "Hessians collected in "),
    ARTIFACT_WALL: ("artifact_production_wallclock: ",), HPARAM_HEAD: ("Hyperparameters:",),
    SEED_LINE: ("seed:",), TOKENIZER_LINE: ("val_bpb:enabled ",), VAL_PATTERN: ("val_loader:shards pattern=",),
    TRAIN_DATASET: ("train_loader:dataset:",), MAX_WALL: ("max_wallclock_seconds:",),
}


def scan(pattern: re.Pattern, text: str) -> Iterator[re.Match]:
    """`pattern.finditer(text)` for a line-anchored pattern of KEYWORDS, in time linear in len(text).

    Every match lies within one line and holds a keyword, so trying the pattern once at the start of each
    line holding a keyword finds exactly the matches finditer would, in the same order.
    """
    keywords = KEYWORDS[pattern]
    starts: set[int] = set()
    for keyword in keywords:
        pos = text.find(keyword)
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            starts.add(start)
            end = text.find("\n", pos)
            if end < 0:
                break
            pos = text.find(keyword, end)
    for start in sorted(starts):
        match = pattern.match(text, start)
        if match:
            yield match


# Score lines that are never the reported score: the failed, unreported TTT line of 04-04.
IGNORED_LABELS = ("final_int6_ttt",)

# Families of final-score labels, most authoritative first. Within a family the last line wins.
# `final_int6_ttt` is deliberately absent: a failed, unreported TTT line in 04-04 (EVAL_INTERNALS §4).
LABEL_PRIORITY: tuple[tuple[str, ...], ...] = (
    ("quantized_ttt_phased", "quantized_ttt_lora", "quantized_ttt", "legal_ttt", "final_int8_ttt_lora",
     "final_ttt_lora"),
    ("final_int6_sliding_window", "final_sliding_window_eval", "final_sliding_window", "final_sliding",
     "quantized_sliding_window"),
    ("final_int8_zlib_roundtrip", "final_int6_roundtrip", "final_roundtrip", "final_ternary_roundtrip",
     "final_binary_roundtrip", "final_xnor_roundtrip", "quantized"),
)


@dataclass(frozen=True)
class Hit:
    """A number read from a log line (1-based line number)."""

    value: float | int
    line: int
    text: str = ""
    label: str = ""


@dataclass(frozen=True)
class ParsedLog:
    name: str
    size: int
    finals: tuple[Hit, ...] = ()        # every score line (value = bpb, label, text holds val_loss)
    lowest_bpb: Hit | None = None       # the lowest bits-per-byte number printed anywhere, any label
    eval_phases: tuple[Hit, ...] = ()   # `eval_time:NNNms` of each score line of the last run (value = ms)
    final: Hit | None = None            # the reported score (val_bpb)
    final_loss: float | None = None
    eval_time_ms: int | None = None     # on the reported score's line
    total_bytes: Hit | None = None
    total_bytes_format: str = ""
    code_bytes: Hit | None = None       # what the log counts as code (compressed when both printed)
    code_bytes_uncompressed: Hit | None = None
    model_bytes: Hit | None = None
    train_time_ms: Hit | None = None
    stop_step: int | None = None
    last_step_time_ms: Hit | None = None
    val_tokens: Hit | None = None
    train_shards: Hit | None = None
    total_eval_time_s: Hit | None = None
    gptq_reserve_s: Hit | None = None
    gptq_hessian_s: Hit | None = None
    artifact_wallclock_s: Hit | None = None
    max_wallclock_s: Hit | None = None
    hyperparams: dict[str, str] = field(default_factory=dict)
    hyperparams_line: int | None = None
    seed: int | None = None             # from the file name when it names one, else from the log
    seed_in_log: int | None = None      # what the run itself printed (hyperparameter dump / `seed:N`)
    variant: str | None = None          # sp1024 | sp4096 | sp8192 | sp8192-caseops | byte260 | None
    variant_source: str = ""
    data_paths: tuple[Hit, ...] = ()    # dataset/tokenizer paths the run printed (line-anchored)
    runs: int = 0                       # number of appended runs seen (stop/final markers)
    truncated: bool = False
    problems: tuple[str, ...] = ()


def read_log_text(path: Path, limit: int) -> tuple[str, int, bool]:
    """Read a log, head and tail only past `limit` bytes; NULs and bad UTF-8 are replaced."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size <= limit:
            raw = handle.read()
            truncated = False
        else:
            half = limit // 2
            head = handle.read(half)
            handle.seek(size - half)
            tail = handle.read(half)
            raw = head + b"\n" + tail
            truncated = True
    text = raw.replace(b"\0", b"").decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return text, size, truncated


def _choose_final(finals: list[Hit]) -> Hit | None:
    for family in LABEL_PRIORITY:
        best: Hit | None = None
        for hit in finals:
            base = hit.label.lower().removesuffix("_exact")
            if base in family:
                if best is None or hit.line > best.line or (
                        hit.line == best.line and hit.label.endswith("_exact")):
                    best = hit
        if best is not None:
            # prefer the _exact twin printed right after the rounded line
            exact = [h for h in finals if h.label == best.label.removesuffix("_exact") + "_exact"
                     and abs(h.line - best.line) <= 3]
            return exact[-1] if exact and not best.label.endswith("_exact") else best
    # an unfamiliar label (e.g. `final_INT7_zlib_roundtrip`): the last roundtrip/sliding score line
    others = [h for h in finals if h.label.lower().removesuffix("_exact") not in IGNORED_LABELS
              and ("roundtrip" in h.label.lower() or "sliding" in h.label.lower())]
    return others[-1] if others else None


def _eval_ms(final: Hit, finals: list[Hit]) -> int | None:
    """`eval_time:NNNms` on the score line, or on its rounded twin just before an `_exact` line."""
    candidates = [final] + [h for h in finals if h.label == final.label.removesuffix("_exact")
                            and 0 < final.line - h.line <= 3]
    for hit in candidates:
        m = EVAL_TIME.search(hit.text)
        if m:
            return int(m.group("ms"))
    return None


class _LineCounter:
    """1-based line of a position, counted lazily (no per-line table: a log of 64 MiB of newlines would
    need gigabytes). Newlines are counted from the nearest known position below: the last answer, or one of
    the checkpoints left by the furthest answers so far. Questions in increasing order (one pattern's matches)
    cost at most one pass; a later pattern starts from the checkpoints, not from the top."""

    def __init__(self, text: str):
        self.text = text
        self.positions, self.lines = [0], [1]       # increasing: appended only past the last one
        self.pos, self.line = 0, 1

    def __call__(self, pos: int) -> int:
        i = bisect.bisect_right(self.positions, pos) - 1
        base, line = self.positions[i], self.lines[i]
        if base < self.pos <= pos:
            base, line = self.pos, self.line
        line += self.text.count("\n", base, pos)
        self.pos, self.line = pos, line
        if pos > self.positions[-1]:
            self.positions.append(pos)
            self.lines.append(line)
        return line


def lowest_printed_bpb(text: str, line) -> Hit | None:
    """The lowest positive number the log prints after a `bpb` key (`line` maps an offset to a line)."""
    best: tuple[float, int] | None = None
    for keyword in ("bpb", "BPB"):
        pos = text.find(keyword)
        while pos >= 0:
            match = ANY_BPB.match(text, pos)
            if match:
                value = float(match.group("v"))
                if value > 0 and (best is None or value < best[0]):
                    best = (value, match.start())
            pos = text.find(keyword, pos + len(keyword))
    if best is None:
        return None
    start = text.rfind("\n", 0, best[1]) + 1
    end = text.find("\n", best[1])
    return Hit(best[0], line(best[1]), text[start:end if end >= 0 else len(text)].strip()[:300])


def parse_log_text(text: str, name: str, size: int | None = None, truncated: bool = False) -> ParsedLog:
    """Parse one log; a number no Python int/float can hold (a hostile log) makes it unparsed, not a crash."""
    try:
        return _parse_log_text(text, name, size, truncated)
    except (ValueError, OverflowError) as exc:
        return ParsedLog(name=name, size=size if size is not None else len(text), truncated=truncated,
                         problems=(f"{name}: a number in the log cannot be read ({type(exc).__name__}: "
                                   f"{str(exc)[:120]}); the log was not used",))


def _parse_log_text(text: str, name: str, size: int | None = None, truncated: bool = False) -> ParsedLog:
    line = _LineCounter(text)

    def last(pattern: re.Pattern, cast=int, group: str = "bytes") -> Hit | None:
        hit = None
        for m in scan(pattern, text):
            hit = m
        if hit is None:
            return None
        try:
            value = cast(hit.group(group))
        except (TypeError, ValueError):
            return None
        return Hit(value, line(hit.start()), hit.group(0).strip()[:300])

    finals: list[Hit] = []
    losses: dict[int, float] = {}
    for m in scan(FINAL, text):
        label = m.group("label").strip()
        if label.startswith(("diagnostic", "DIAGNOSTIC", "pre-quantization")):
            continue
        try:
            bpb = float(m.group("bpb"))
            loss = float(m.group("loss"))
        except ValueError:
            continue
        ln = line(m.start())
        finals.append(Hit(bpb, ln, m.group(0).strip()[:300], label))
        losses[ln] = loss
    final = _choose_final(finals)
    eval_ms = _eval_ms(final, finals) if final is not None else None
    stops = list(scan(STOP, text))
    last_stop = line(stops[-1].start()) if stops else 0
    phases = []
    for hit in finals:
        m = EVAL_TIME.search(hit.text)
        if m and hit.line > last_stop and hit.label.lower() not in IGNORED_LABELS:
            phases.append(Hit(int(m.group("ms")), hit.line, hit.text, hit.label))

    total = None
    total_fmt = ""
    for m in scan(TOTAL, text):
        fmt = m.group("fmt") or ""
        if fmt or total is None or not total_fmt:
            total = Hit(int(m.group("bytes")), line(m.start()), m.group(0).strip())
            total_fmt = fmt
    code_c = code_u = code_plain = None
    for m in scan(CODE, text):
        hit = Hit(int(m.group("bytes")), line(m.start()), m.group(0).strip())
        kind = m.group("kind")
        if kind == "compressed":
            code_c = hit
        elif kind == "uncompressed":
            code_u = hit
        else:
            code_plain = hit
    alt = None
    for m in scan(ALT_ARTIFACT, text):
        alt = m
    if total is None and alt is not None:
        total = Hit(int(float(alt.group("mb")) * 1e6), line(alt.start()), alt.group(0).strip()[:300])
        total_fmt = "artifact-MB (rounded)"
        if code_plain is None and code_c is None:
            code_plain = Hit(int(alt.group("code")), line(alt.start()), alt.group(0).strip()[:300])

    train_ms = stop_step = None
    if stops:
        stop = stops[-1]
        train_ms = Hit(int(stop.group("ms")), line(stop.start()), stop.group(0).strip())
        stop_step = int(stop.group("step")) if stop.group("step") else None
    last_step = None
    for pattern in (VAL_OLD, STEP_OLD):
        for m in scan(pattern, text):
            ms = m.groupdict().get("ms") or m.groupdict().get("t")
            if ms is not None and (last_step is None or line(m.start()) > last_step.line):
                last_step = Hit(int(ms), line(m.start()), m.group(0).strip()[:200])
    for m in scan(STEP_NEW, text):
        ms = int(float(m.group("min")) * 60000)
        if last_step is None or line(m.start()) > last_step.line:
            last_step = Hit(ms, line(m.start()), m.group(0).strip()[:200])

    val_tokens = None
    for m in scan(VALTOK, text):
        val_tokens = Hit(int(m.group("n1") or m.group("n2")), line(m.start()), m.group(0).strip())
    shards = None
    for m in scan(TRAIN_SHARDS, text):
        shards = Hit(int(m.group("n1") or m.group("n2")), line(m.start()), m.group(0).strip())

    hyper, hyper_line = _hyperparams(text, line)
    seed_log: int | None = None
    try:
        seed_log = int(hyper["seed"]) if "seed" in hyper else None
    except ValueError:
        seed_log = None
    if seed_log is None:
        for m in scan(SEED_LINE, text):
            seed_log = int(m.group("n"))
    base = name.rsplit("/", 1)[-1]
    sm = SEED_NAME.search(base) or SEED_NAME_LOOSE.search(base)
    seed = int(sm.group(1)) if sm else seed_log
    paths = _data_paths(text, hyper, hyper_line, line)
    variant, variant_source = _variant(paths, hyper)

    runs = max(len(stops), len([f for f in finals if f.label.startswith("final_int8_zlib_roundtrip")
                                and not f.label.endswith("_exact")]) and 1)
    return ParsedLog(
        name=name,
        size=size if size is not None else len(text),
        finals=tuple(finals),
        lowest_bpb=lowest_printed_bpb(text, line),
        eval_phases=tuple(phases),
        final=final,
        final_loss=losses.get(final.line) if final else None,
        eval_time_ms=eval_ms,
        total_bytes=total,
        total_bytes_format=total_fmt,
        code_bytes=code_c or code_plain,
        code_bytes_uncompressed=code_u,
        model_bytes=last(MODEL),
        train_time_ms=train_ms,
        stop_step=stop_step,
        last_step_time_ms=last_step,
        val_tokens=val_tokens,
        train_shards=shards,
        total_eval_time_s=last(TOTAL_EVAL, float, "s"),
        gptq_reserve_s=_reserve(GPTQ_RESERVE, text, line),
        gptq_hessian_s=last(GPTQ_HESS, float, "s"),
        artifact_wallclock_s=last(ARTIFACT_WALL, float, "s"),
        max_wallclock_s=last(MAX_WALL, float, "s"),
        hyperparams=hyper,
        hyperparams_line=hyper_line,
        seed=seed,
        seed_in_log=seed_log,
        variant=variant,
        variant_source=variant_source,
        data_paths=tuple(paths),
        runs=runs,
        truncated=truncated,
    )


def _reserve(pattern: re.Pattern, text: str, line) -> Hit | None:
    """`gptq:reserving 12s, effective=588000ms` or `gptq:reserving 14000ms from training budget, ...` (s)."""
    found = None
    for m in scan(pattern, text):
        found = m
    if found is None:
        return None
    seconds = float(found.group("s")) if found.group("s") else int(found.group("rms")) / 1000
    return Hit(seconds, line(found.start()), found.group(0).strip())


def _hyperparams(text: str, line) -> tuple[dict[str, str], int | None]:
    """The last `Hyperparameters:` block printed by the run (indented `key: value` lines after it)."""
    heads = list(scan(HPARAM_HEAD, text))
    for head in reversed(heads):
        block: dict[str, str] = {}
        for raw in text[head.end() + 1: head.end() + 40000].split("\n"):
            m = HPARAM.match(raw)
            if not m:
                break
            block.setdefault(m.group("key"), m.group("value").strip())
        if block:
            return block, line(head.start())
    return {}, None


def _data_paths(text: str, hyper: dict[str, str], hyper_line: int | None, line) -> list[Hit]:
    """Dataset and tokenizer paths the run printed (never the source dump: every pattern is anchored)."""
    out: list[Hit] = []
    for key in ("tokenizer_path", "datasets_dir", "data_path", "data_dir", "val_files", "train_files"):
        if key in hyper:
            out.append(Hit(0, hyper_line or 0, hyper[key], key))
    for pattern, label in ((TOKENIZER_LINE, "tokenizer_path"), (VAL_PATTERN, "val_files"),
                           (TRAIN_DATASET, "train_dataset")):
        for m in scan(pattern, text):
            out.append(Hit(0, line(m.start()), m.group("path"), label))
    return out


def _variant(paths: list[Hit], hyper: dict[str, str]) -> tuple[str | None, str]:
    """Which tokenizer/dataset the run used, from its printed paths, else its vocab size."""
    for hit in paths:
        m = VARIANT.search(hit.text)
        if not m:
            continue
        if m.group("byte"):
            return "byte260", hit.label
        base = m.group("v") or f"sp{m.group('tv')}"
        caseops = "caseops" in hit.text.lower() or hyper.get("caseops_enabled", "").lower() in ("true", "1")
        return (f"{base}-caseops" if caseops and base == "sp8192" else base), hit.label
    vocab = hyper.get("vocab_size")
    if vocab and vocab.isdigit():
        caseops = hyper.get("caseops_enabled", "").lower() in ("true", "1")
        v = {"1024": "sp1024", "4096": "sp4096", "8192": "sp8192", "260": "byte260"}.get(vocab)
        if v:
            return (f"{v}-caseops" if caseops and v == "sp8192" else v), "vocab_size"
    return None, ""


def parse_log_file(path: Path, name: str, limit: int) -> ParsedLog:
    try:
        text, size, truncated = read_log_text(path, limit)
    except OSError as exc:
        return ParsedLog(name=name, size=0, problems=(f"{name}: cannot be read: {exc}",))
    return parse_log_text(text, name, size, truncated)
