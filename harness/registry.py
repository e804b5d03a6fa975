"""The rule catalogue as the harness sees it: the one place harness/ reaches rules/.

The engine, the formats, the example runner, the sandbox, trace and eval paths ask this module for rules (by
id, or all of them in id order) and never import a rule module themselves; rules/ in turn imports only
harness's lower layers (scanner, context, loaders, findings), so the two packages import one way.
`get(id).finding(...)` builds a finding of a registered rule, so every finding's id, category, severity and
citation come from its rule.
"""

from __future__ import annotations

from rules import all_rules, get, rule_by_id, unregistered
from rules.base import Example, Rule

__all__ = ["Example", "Rule", "all_rules", "get", "rule_by_id", "unregistered"]
