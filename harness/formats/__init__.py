"""Formatter registry: each module registers `render(report) -> str` under its name (bandit-style)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from harness.report import Report

Renderer = Callable[..., str]
_REGISTRY: dict[str, Renderer] = {}


def register(name: str) -> Callable[[Renderer], Renderer]:
    def wrap(func: Renderer) -> Renderer:
        _REGISTRY[name] = func
        return func

    return wrap


def formats() -> dict[str, Renderer]:
    if not _REGISTRY:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(_REGISTRY.items()))


def render(report: Report, name: str, **kwargs) -> str:
    return formats()[name](report, **kwargs)
