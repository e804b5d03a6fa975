"""Formatter registry: each module registers `render(report) -> str` under its name (bandit-style)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from harness.report import Report

Renderer = Callable[..., str]
_REGISTRY: dict[str, Renderer] = {}
_DISCOVERED: list[bool] = []   # discovery ran (a format imported directly must not stop it)


def register(name: str) -> Callable[[Renderer], Renderer]:
    def wrap(func: Renderer) -> Renderer:
        _REGISTRY[name] = func
        return func

    return wrap


def formats() -> dict[str, Renderer]:
    if not _DISCOVERED:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _DISCOVERED.append(True)
    return dict(sorted(_REGISTRY.items()))


def render(report: Report, name: str, **kwargs) -> str:
    return formats()[name](report, **kwargs)
