"""How a submission says it is launched: the README's (or a run script's) command and its env settings.

Reads shell code blocks line by line: backslash continuations are joined, stand-alone `K=V` / `export K=V`
lines feed `$K` expansion, and the first command that runs a `train*.py` script (with `torchrun` or
`python`) and is not an eval-only variant wins. Settings that point at the author's machine (data and
tokenizer paths, absolute paths) are dropped and listed, since the sandbox supplies its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from harness.submission import Submission

ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
NPROC = re.compile(r"--nproc[_-]per[_-]node[= ](\d+)")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
SANDBOX_OWNED = {"DATA_PATH", "TOKENIZER_PATH", "DATA_DIR", "RUN_ID", "CUDA_VISIBLE_DEVICES", "PYTHONPATH",
                 "LD_LIBRARY_PATH", "PATH", "HOME"}
EVAL_ONLY = re.compile(r"(EVAL_ONLY|_ONLY$|ONLY_EVAL|EVAL_ONLY_PATH)")


@dataclass(frozen=True)
class LaunchPlan:
    script: str
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""                   # "README.md:25" or "" when nothing was found
    nproc: int | None = None
    dropped: dict[str, str] = field(default_factory=dict)


INLINE = re.compile(r"`([^`]+)`")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Shell lines with continuations joined; a prose line contributes its inline `code` spans."""
    out: list[tuple[int, str]] = []
    buffer, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buffer and "`" in line and not line.lstrip().startswith("```"):
            out += [(number, span.strip()) for span in INLINE.findall(line)]
            continue
        if not buffer:
            first = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        out.append((first, (buffer + line).strip()))
        buffer = ""
    if buffer:
        out.append((first, buffer.strip()))
    return out


def _expand(value: str, variables: dict[str, str]) -> str:
    return VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), value)


def parse_command(line: str, variables: dict[str, str]) -> tuple[dict[str, str], str, int | None] | None:
    """(env settings, script name, nproc) of one shell command that runs a train*.py script, else None."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return None
    env: dict[str, str] = {}
    i = 0
    while i < len(tokens) and ASSIGN.match(tokens[i]):
        key, value = ASSIGN.match(tokens[i]).groups()
        env[key] = _expand(value, variables)
        i += 1
    rest = tokens[i:]
    if not rest:
        return None
    launcher = rest[0].rsplit("/", 1)[-1]
    if not (launcher in ("torchrun", "uv") or launcher.startswith("python")):
        return None
    scripts = [t for t in rest[1:] if t.endswith(".py") and t.rsplit("/", 1)[-1].startswith("train")]
    if not scripts:
        return None
    nproc = NPROC.search(" ".join(rest))
    return env, scripts[0].rsplit("/", 1)[-1], int(nproc.group(1)) if nproc else None


def launch_plan(sub: Submission) -> LaunchPlan:
    """The launch the submission documents; falls back to its main script with no settings."""
    default_script = sub.script_names[0] if sub.script_names else "train_gpt.py"
    sources: list[tuple[str, str]] = []
    if sub.readme_text:
        sources.append(("README.md", sub.readme_text))
    for name in sorted(n for n in sub.files if n.endswith(".sh") and "/" not in n):
        try:
            sources.append((name, sub.read_bytes(name, limit=1 << 20).decode("utf-8", errors="replace")))
        except Exception:  # noqa: BLE001 - an unreadable run script is simply not used
            continue
    for name, text in sources:
        variables: dict[str, str] = {}
        for number, line in _logical_lines(text):
            only_assign = ASSIGN.match(line)
            if only_assign and " " not in line.split("=", 1)[0].replace("export ", ""):
                try:
                    parts = shlex.split(line)
                except ValueError:
                    parts = []
                if parts and all(ASSIGN.match(p) or p == "export" for p in parts):
                    for part in parts:
                        if part != "export":
                            key, value = ASSIGN.match(part).groups()
                            variables[key] = _expand(value, variables)
                    continue
            parsed = parse_command(line, variables)
            if parsed is None:
                continue
            env, script, nproc = parsed
            if any(EVAL_ONLY.search(k) for k in env):
                continue
            if script not in sub.files:
                script = default_script if script.startswith("train_gpt") or default_script == script else script
            kept, dropped = {}, {}
            for key, value in env.items():
                if key in SANDBOX_OWNED or value.startswith("/") or "$" in value:
                    dropped[key] = value
                else:
                    kept[key] = value
            return LaunchPlan(script, kept, f"{name}:{number}", nproc, dropped)
    return LaunchPlan(default_script)


WALLCLOCK_DEFAULT = re.compile(
    r"""MAX_WALLCLOCK_SECONDS['"]\s*,\s*['"]?([0-9.eE+]+)""")


def wallclock_cap(source: str) -> float | None:
    """The script's default MAX_WALLCLOCK_SECONDS (None when the script does not read it)."""
    match = WALLCLOCK_DEFAULT.search(source)
    if not match:
        return None
    try:
        return float(match.group(1))
    except ValueError:
        return None
