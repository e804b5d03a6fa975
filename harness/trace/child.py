"""The traced process: import the submission (its main guard holds), tag the validation tokens its own
loader returns, run its `main()` under `ProvenanceMode`, and write the event log as JSON.

Usage: python -m harness.trace.child SCRIPT OUT_JSON [--tokens N]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Any

LOADER_NAMES = ("load_validation_tokens", "load_val_tokens", "load_validation_data")
SHARD_LOADER_NAMES = ("load_data_shard", "_load_data_shard", "load_shard")


class _Tee(io.TextIOBase):
    """Writes through to the real stream and records each complete line as a print event."""

    def __init__(self, real, log) -> None:
        self.real, self.log, self.buf = real, log, ""

    def write(self, s: str) -> int:
        self.real.write(s)
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.log.add("print", text=line[:2000])
        return len(s)

    def flush(self) -> None:
        self.real.flush()


def _wrap_loader(fn, log, tokens: int | None):
    import torch

    from harness.trace.provenance import tag_tokens

    def loader(*args: Any, **kwargs: Any):
        out = fn(*args, **kwargs)
        if not isinstance(out, torch.Tensor):
            import numpy as np

            if isinstance(out, np.ndarray):
                out = torch.from_numpy(np.ascontiguousarray(out))
            else:
                log.add("note", text=f"{fn.__name__} returned {type(out).__name__}: not tagged")
                return out
        if tokens is not None and out.numel() > tokens + 1:
            out = out[: tokens + 1].clone()
        tag_tokens(out)
        log.add("val", loader=fn.__name__, n=int(out.numel()))
        return out

    return loader


def _val_offset(path: Path) -> int:
    """Position of the shard's first token in the sorted concatenation of its folder's val shards."""
    from harness.data.shards import read_header, shard_files

    return sum(read_header(other).count for other in shard_files(path.parent, "val") if other.name < path.name)


def _wrap_shard_loader(fn, log):
    """A submission that reads val shards itself (not through its val loader) gets them tagged here."""
    import torch

    from harness.trace.provenance import tag_tokens

    def loader(file: Any, *args: Any, **kwargs: Any):
        out = fn(file, *args, **kwargs)
        path = Path(str(file))
        if (isinstance(out, torch.Tensor) and out.dim() == 1 and path.name.startswith("fineweb_val_")
                and "_bytes_" not in path.name and not hasattr(out, "_ga_pos")):
            try:
                start = _val_offset(path)
            except (OSError, ValueError):
                return out
            tag_tokens(out, start)
            log.add("val_shard", file=path.name, start=start, n=int(out.numel()))
        return out

    return loader


def trace(script: Path, tokens: int | None) -> dict[str, Any]:
    from harness.evaluate.adapter import AdapterError, import_submission
    from harness.trace.provenance import EventLog, ProvenanceMode, add_step_hook

    log = EventLog()
    try:
        mod = import_submission(script)
    except AdapterError as exc:
        return {"events": log.events, "error": str(exc)}
    wrapped = [n for n in LOADER_NAMES if callable(getattr(mod, n, None))]
    for name in wrapped:
        setattr(mod, name, _wrap_loader(getattr(mod, name), log, tokens))
    for name in SHARD_LOADER_NAMES:
        if callable(getattr(mod, name, None)):
            setattr(mod, name, _wrap_shard_loader(getattr(mod, name), log))
            wrapped.append(name)
    main = getattr(mod, "main", None)
    if not callable(main):
        return {"events": log.events, "error": f"{script}: no main() to run"}
    if not wrapped:
        return {"events": log.events, "error": f"{script}: no validation loader ({', '.join(LOADER_NAMES)}) "
                                               f"to tag"}
    handle = add_step_hook(log)
    real = sys.stdout
    sys.stdout = _Tee(real, log)
    error = None
    try:
        with ProvenanceMode(log):
            main()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = f"{script}: main() exited with status {exc.code}"
    except Exception as exc:  # noqa: BLE001 - the submission's failure becomes the report's message
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb)
                      if Path(f.filename).resolve() == script.resolve()), "")
        error = f"{script}: main() raised {type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")
    finally:
        if sys.stdout.buf:
            log.add("print", text=sys.stdout.buf)
        sys.stdout = real
        handle.remove()
    return {"events": log.events, "error": error}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness.trace.child")
    ap.add_argument("script", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokens", type=int)
    args = ap.parse_args(argv)
    sys.argv = [str(args.script)]
    result = trace(args.script.resolve(), args.tokens)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
