"""README.md's rules table is the one scripts/rules_table.py generates from rules/."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("rules_table", ROOT / "scripts" / "rules_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_up_to_date():
    script = _script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.START in readme and script.END in readme
    assert script.render(readme) == readme, "run: python scripts/rules_table.py"


def test_every_rule_has_a_row():
    from rules import all_rules

    table = _script().table()
    for rule in all_rules():
        assert f"| `{rule.ID}` |" in table


def test_render_keeps_other_sections_and_appends_without_markers(tmp_path):
    script = _script()
    text = "# x\n\nintro\n\n" + script.START + "\nSTALE-ROW\n" + script.END + "\n\n## later section\n"
    out = script.render(text)
    assert out.startswith("# x\n\nintro\n\n") and out.endswith("\n\n## later section\n") and "STALE-ROW" not in out
    fresh = script.render("# y\n")
    assert fresh.startswith("# y\n") and script.START in fresh
    readme = tmp_path / "README.md"
    readme.write_text("# z\n", encoding="utf-8")
    assert script.main(["--readme", str(readme), "--check"]) == 1
    assert script.main(["--readme", str(readme)]) == 0
    assert script.main(["--readme", str(readme), "--check"]) == 0
