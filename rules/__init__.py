"""The rule catalogue: one module per rule, discovered in module-name order (deterministic)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache, lru_cache

from rules.base import Rule


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    found: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Rule) and value is not Rule
                    and value.__module__ == module.__name__ and getattr(value, "ID", None)):
                if value.ID in found:
                    raise RuntimeError(f"rule id {value.ID} defined twice")
                found[value.ID] = value
    return tuple(found[k] for k in sorted(found))


def rule_by_id(rule_id: str) -> type[Rule]:
    for rule in all_rules():
        if rule.ID == rule_id:
            return rule
    raise KeyError(rule_id)


@cache
def get(rule_id: str) -> Rule:
    """The registered rule `rule_id`, ready to build findings (`rules.get("SIZE-CAP-16MB").finding(...)`):
    every finding golfaudit emits, from any command, is built by its rule, so its id, category, severity,
    citation and in-force date come from one place."""
    return rule_by_id(rule_id)()


def unregistered(rule_ids) -> set[str]:
    """The ids in `rule_ids` that no rule in the catalogue defines."""
    known = {rule.ID for rule in all_rules()}
    return {r for r in rule_ids if r not in known}
