"""Our probes leave a model as they found it.

The records cache tables on their modules on the first forward (rotary cos/sin, `_seq_len_cached`), and
which forward fills them decides their bits: tables built by an eager forward and by a compiled one differ
in rounding. On one H100 (sp8192 04-08 record, random weights, 131k tokens) the record's own compiled
sliding eval gave BPB 6.42118 when its own compiled forward built the tables and 6.42080 (-3.8e-4) when an
eager forward of ours had built them first. So every forward golfaudit runs for its own purposes (the
head-slice probe, the flip and normalisation checks, FLOP counting) runs inside `kept_state`, and the
eval then fills the caches as the submission's own loop would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_INTERNALS: frozenset[str] | None = None


def _internals() -> frozenset[str]:
    """The attributes every nn.Module has (parameters, buffers, submodules, hooks, `training`)."""
    global _INTERNALS
    if _INTERNALS is None:
        import torch

        _INTERNALS = frozenset(vars(torch.nn.Module()))
    return _INTERNALS


def snapshot(model: Any) -> Callable[[], None]:
    """A function that puts every module of `model` back as it is now: its own attributes (tensors,
    lengths, flags; ones added later are removed) and its non-persistent buffers, as the same objects (a
    cache a forward rebuilds by assignment is restored; parameters and the state dict are not touched)."""
    internals = _internals()
    saved = []
    modules = model.modules() if callable(getattr(model, "modules", None)) else ()    # an adapter hook's
    for module in modules:                                                            # non-Module model
        attrs = {k: v for k, v in vars(module).items() if k not in internals}
        extra = {k: module._buffers[k] for k in module._non_persistent_buffers_set if k in module._buffers}
        saved.append((module, attrs, extra))

    def restore() -> None:
        for module, attrs, extra in saved:
            for name in [k for k in vars(module) if k not in internals and k not in attrs]:
                del module.__dict__[name]
            module.__dict__.update(attrs)
            for name in [k for k in module._non_persistent_buffers_set if k not in extra]:
                module._buffers.pop(name, None)
                module._non_persistent_buffers_set.discard(name)
            module._buffers.update(extra)

    return restore


@contextlib.contextmanager
def kept_state(model: Any) -> Iterator[None]:
    """Within: forwards of `model` may fill caches; on exit the model is put back (`snapshot`)."""
    restore = snapshot(model)
    try:
        yield
    finally:
        restore()
