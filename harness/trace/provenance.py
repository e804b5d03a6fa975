"""Position provenance through torch, and the event log of a traced run.

Tags live on tensors as attributes:
- `_ga_pos`: an int64 CPU "shadow" of the tensor's shape whose elements are keys: `position` for a
  validation token (event 0), `(event << 32) | position` for an element of a per-token loss, -1 for none.
  Structural ops (indexing, views, reshapes, `.to()`, cat/stack ...) are replayed on the shadow.
- `_ga_set`: {loss event id: frozenset(positions)} for values reduced from losses (sums, means, products).

A loss event is created where validation-derived targets meet a loss (`F.cross_entropy`, `F.nll_loss`,
`gather` with a tagged index); a `backward`/`autograd.grad` on a tagged value is a train event; `.item()`,
`.tolist()`, `float()` of a tagged value is a read-out (the value and the loss events in it); every
printed line is a print event. All events share one counter, so their order is the run's order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

SHIFT = 32
MASK = (1 << SHIFT) - 1

_CONVERT = {"to", "long", "int", "short", "cuda", "cpu", "type", "float", "double", "half", "bfloat16",
            "contiguous", "clone", "detach", "detach_", "requires_grad_", "pin_memory", "__deepcopy__"}
_STRUCT = {"__getitem__", "view", "reshape", "flatten", "unsqueeze", "squeeze", "narrow", "permute",
           "transpose", "t", "expand", "expand_as", "view_as", "reshape_as", "unfold", "select", "split",
           "chunk", "unbind", "stack", "cat", "concat", "concatenate", "roll", "flip", "masked_select",
           "index_select", "movedim", "swapaxes", "hstack", "vstack", "repeat", "tensor_split", "T",
           "__get__", "ravel", "squeeze_", "unsqueeze_"}
_READ = {"item", "tolist", "__float__", "__int__", "__index__", "__bool__"}


def _name(func: Any) -> str:
    name = getattr(func, "__name__", "")
    if name == "__get__":  # a property such as Tensor.T
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def shadow(t: torch.Tensor) -> torch.Tensor | None:
    return getattr(t, "_ga_pos", None)


def set_tag(t: torch.Tensor) -> dict[int, frozenset[int]]:
    return getattr(t, "_ga_set", None) or {}


def tag_tokens(t: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Mark `t` (1-D validation tokens) as holding positions start, start+1, ..."""
    t._ga_pos = torch.arange(start, start + t.numel(), dtype=torch.int64).reshape(t.shape)
    return t


def _merge(*tags: dict[int, frozenset[int]]) -> dict[int, frozenset[int]]:
    out: dict[int, frozenset[int]] = {}
    for tag in tags:
        for e, pos in tag.items():
            out[e] = out[e] | pos if e in out else pos
    return out


def _keys_to_set(sh: torch.Tensor) -> dict[int, frozenset[int]]:
    keys = sh.reshape(-1)
    keys = keys[keys >= (1 << SHIFT)]
    if keys.numel() == 0:
        return {}
    out: dict[int, set[int]] = {}
    for k in torch.unique(keys).tolist():
        out.setdefault(k >> SHIFT, set()).add(k & MASK)
    return {e: frozenset(p) for e, p in out.items()}


def _loss_shadowed(t: torch.Tensor) -> bool:
    sh = shadow(t)
    return sh is not None and sh.numel() > 0 and bool((sh >= (1 << SHIFT)).any())


def _reduce_tag(t: torch.Tensor) -> dict[int, frozenset[int]]:
    sh = shadow(t)
    return _merge(set_tag(t), _keys_to_set(sh) if sh is not None else {})


class EventLog:
    """The ordered events of one traced run (plain dicts, ready for JSON)."""

    def __init__(self) -> None:
        # event 0 is the start, so every loss event id is >= 1 (key 0 << 32 | p is a plain token)
        self.events: list[dict[str, Any]] = [{"i": 0, "kind": "start"}]

    def add(self, kind: str, **data: Any) -> int:
        idx = len(self.events)
        self.events.append({"i": idx, "kind": kind, **data})
        return idx


def _jsonable_tag(tag: dict[int, frozenset[int]], log: EventLog) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e, pos in tag.items():
        full = log.events[e].get("positions") if 0 <= e < len(log.events) else None
        out[str(e)] = "all" if full is not None and len(full) == len(pos) else sorted(pos)
    return out


class ProvenanceMode(TorchFunctionMode):
    """Propagates position tags through every torch function and records the events."""

    def __init__(self, log: EventLog):
        super().__init__()
        self.log = log

    # ------------------------------------------------------------------ dispatch
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        if name in ("cross_entropy", "nll_loss"):
            return self._loss(func, args, kwargs)
        if name in ("backward",) or func is torch.autograd.grad or func is torch.autograd.backward:
            self._train(args, kwargs)
            return func(*args, **kwargs)
        if name in _READ:
            out = func(*args, **kwargs)
            self._read(args[0], out)
            return out
        out = func(*args, **kwargs)
        ins = _tensors(args) + _tensors(kwargs)
        if not any(hasattr(t, "_ga_pos") or hasattr(t, "_ga_set") for t in ins):
            return out
        if name in ("__setitem__", "copy_"):
            try:
                self._write(name, args)
            except Exception:  # noqa: BLE001 - provenance must never break the traced run
                pass
            return out
        try:
            self._propagate(func, name, args, kwargs, ins, out)
        except Exception:  # noqa: BLE001 - provenance must never break the traced run
            pass
        return out

    # ------------------------------------------------------------------ propagation
    def _propagate(self, func, name, args, kwargs, ins, out) -> None:
        outs = _tensors(out)
        if not outs:
            return
        if name == "gather" and self._gather(args, kwargs, out):
            return
        if name in _CONVERT and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
            src = args[0]
            if shadow(src) is not None and shadow(src).shape == out.shape:
                out._ga_pos = shadow(src)
            if set_tag(src):
                out._ga_set = set_tag(src)
            return
        if name in _STRUCT and any(shadow(t) is not None for t in ins):
            sh_out = self._replay(func, args, kwargs)
            if sh_out is not None:
                sh_list = _tensors(sh_out)
                if len(sh_list) == len(outs):
                    for o, s in zip(outs, sh_list):
                        if s.shape == o.shape:
                            o._ga_pos = s
                tag = _merge(*(set_tag(t) for t in ins))
                if tag:
                    for o in outs:
                        o._ga_set = _merge(set_tag(o), tag)
                return
        # elementwise / reductions: a loss shadow of the output's shape carries over; else a set tag
        tag: dict[int, frozenset[int]] = {}
        carried = False
        for t in ins:
            if _loss_shadowed(t) and len(outs) == 1 and shadow(t).shape == outs[0].shape and not carried:
                outs[0]._ga_pos = shadow(t)
                carried = True
                tag = _merge(tag, set_tag(t))
            else:
                tag = _merge(tag, _reduce_tag(t))
        if tag:
            for o in outs:
                o._ga_set = _merge(set_tag(o), tag)

    def _replay(self, func, args, kwargs):
        def sub(obj, like_shape=None):
            if isinstance(obj, torch.Tensor):
                sh = shadow(obj)
                if sh is not None:
                    return sh
                if obj.dtype == torch.bool or not obj.is_floating_point() and obj is not args[0]:
                    return obj.cpu() if obj.device.type != "cpu" else obj
                return torch.full(obj.shape, -1, dtype=torch.int64)
            if isinstance(obj, list):
                return [sub(o) for o in obj]
            if isinstance(obj, tuple):
                return tuple(sub(o) for o in obj)
            return obj

        # the first tensor (self / the sequence to join) is replaced by shadows; index tensors stay
        first, rest = args[0], args[1:]
        if isinstance(first, (list, tuple)):
            new_first = type(first)(
                shadow(t) if shadow(t) is not None else torch.full(t.shape, -1, dtype=torch.int64)
                for t in first)
        elif isinstance(first, torch.Tensor):
            new_first = shadow(first) if shadow(first) is not None else torch.full(first.shape, -1,
                                                                                   dtype=torch.int64)
        else:
            return None
        rest = tuple(r.cpu() if isinstance(r, torch.Tensor) and r.device.type != "cpu" else r for r in rest)
        rest = tuple(sub(r) if isinstance(r, (list, tuple)) and _tensors(r) else r for r in rest)
        return func(new_first, *rest, **kwargs)

    def _write(self, name, args) -> None:
        """`dest[index] = src` / `dest.copy_(src)`: the written elements take the source's keys."""
        dest = args[0]
        src = args[2] if name == "__setitem__" else args[1]
        if not isinstance(dest, torch.Tensor):
            return
        src_sh = shadow(src) if isinstance(src, torch.Tensor) else None
        if src_sh is None and shadow(dest) is None:
            if isinstance(src, torch.Tensor) and set_tag(src):
                dest._ga_set = _merge(set_tag(dest), set_tag(src))
            return
        sh = shadow(dest)
        sh = sh.clone() if sh is not None else torch.full(dest.shape, -1, dtype=torch.int64)
        value = src_sh if src_sh is not None else -1
        if name == "copy_":
            sh[...] = value
        else:
            index = args[1]
            if isinstance(index, torch.Tensor):
                index = index.cpu()
            elif isinstance(index, tuple):
                index = tuple(i.cpu() if isinstance(i, torch.Tensor) else i for i in index)
            sh[index] = value
        dest._ga_pos = sh
        if isinstance(src, torch.Tensor) and set_tag(src):
            dest._ga_set = _merge(set_tag(dest), set_tag(src))

    # ------------------------------------------------------------------ events
    def _loss(self, func, args, kwargs):
        out = func(*args, **kwargs)
        names = ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction")
        bound = dict(zip(names, args))
        bound.update(kwargs)
        target = bound.get("target")
        sh = shadow(target) if isinstance(target, torch.Tensor) else None
        if sh is None:
            tag = _merge(*(_reduce_tag(t) for t in _tensors(args) + _tensors(kwargs)))
            if tag and isinstance(out, torch.Tensor):
                out._ga_set = tag
            return out
        ignore = bound.get("ignore_index", -100)
        keep = (target.detach().cpu() != ignore) & (sh >= 0) & (sh < (1 << SHIFT))
        positions = sh[keep]
        ev = self.log.add("loss", fn=_name(func), grad=bool(torch.is_grad_enabled()),
                          positions=positions.tolist())
        reduction = bound.get("reduction", "mean")
        if reduction == "none" and out.shape == sh.shape:
            out._ga_pos = torch.where(keep, (ev << SHIFT) | sh.clamp(min=0), torch.full_like(sh, -1))
        else:
            out._ga_set = {ev: frozenset(positions.tolist())}
        return out

    def _gather(self, args, kwargs, out) -> bool:
        index = kwargs.get("index", args[2] if len(args) > 2 else None)
        sh = shadow(index) if isinstance(index, torch.Tensor) else None
        if sh is None or not isinstance(out, torch.Tensor) or sh.shape != out.shape:
            return False
        keep = (sh >= 0) & (sh < (1 << SHIFT))
        ev = self.log.add("loss", fn="gather", grad=bool(torch.is_grad_enabled()), positions=sh[keep].tolist())
        out._ga_pos = torch.where(keep, (ev << SHIFT) | sh.clamp(min=0), torch.full_like(sh, -1))
        return True

    def _train(self, args, kwargs) -> None:
        roots = _tensors(args[:1]) + _tensors(kwargs.get("outputs", kwargs.get("tensors", [])))
        tag = _merge(*(_reduce_tag(t) for t in roots))
        if tag:
            self.log.add("train", events=_jsonable_tag(tag, self.log))
        elif any(t.requires_grad for t in roots):
            self.log.add("backward", note="on a value not derived from validation losses")

    def _read(self, t, value) -> None:
        if not isinstance(t, torch.Tensor):
            return
        tag = _reduce_tag(t)
        if not tag:
            return
        v = value if isinstance(value, (int, float)) else None
        self.log.add("read", value=v, events=_jsonable_tag(tag, self.log))


def add_step_hook(log: EventLog):
    """Record every optimizer step (all optimizers) as an event; returns the hook handle."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    return register_optimizer_step_post_hook(lambda opt, a, k: log.add("step", optimizer=type(opt).__name__))
