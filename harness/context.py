"""What the rules know about one submission while it is audited: `AuditContext`.

The engine builds one context per submission and hands it to every rule's `check(ctx)`. Everything a rule
or a scanner derives from the submission is held here, computed on first use and shared by all rules:

- `submission`: the folder as loaded (files, logs, submission.json, README);
- `code` and `units`: the code that runs (harness.codeload: packed scripts unpacked, exec'd and imported
  siblings followed), as `CodeUnit`s;
- `code_bytes`: what the shipped code weighs and which count binds (harness.codebytes);
- `log_bindings`: which print call of the code wrote each log line (harness.scan.logbind.log_bindings
  fills it on first use);
- `derived(compute)`: the cache of analyses built from the above: the resolved configuration
  (harness.scan.config.resolve_settings), the TTT order analysis and its program model
  (harness.scan.ttt.analyse), the evaluation-path functions (harness.scan.patterns.eval_path).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from harness.codebytes import CodeBytes, code_bytes
from harness.codeload import CodeBundle, CodeUnit, load_code, parsed_scripts
from harness.logdump import stand_in_units
from harness.submission import Submission

T = TypeVar("T")


class AuditContext:
    """One submission under audit and everything derived from it (see the module docstring)."""

    def __init__(self, submission: Submission) -> None:
        self.submission = submission
        # Log line → the print call that wrote it. A slot for the log binder: None until it is computed.
        self.log_bindings: Any | None = None
        self._derived: dict[Callable[[AuditContext], Any], Any] = {}

    @cached_property
    def code(self) -> CodeBundle:
        """The code bundle of the main script, with the loader's problems."""
        return load_code(self.submission)

    @cached_property
    def units(self) -> list[CodeUnit]:
        """The parsed code the rules and the scanner read: the bundle's units, packed scripts unpacked.
        Unparseable files are not among them: RECORDS-FOLDER and the loader's problems report those. When
        no script has any code, the source dump at the top of a log stands in (`<log> (source dump)`)."""
        try:
            units = list(self.code.units)
        except Exception:  # noqa: BLE001 - a loader failure leaves the scripts, parsed directly
            units = parsed_scripts(self.submission)
        if not any(u.text.strip() for u in units):
            # no script, or an empty one: the source the logs print is the code that ran
            units += stand_in_units(self)
        return units

    @cached_property
    def code_bytes(self) -> CodeBytes | None:
        """The shipped code's size (the minifier takes a second or two on a 150 KB script, so once)."""
        try:
            main = self.code
        except Exception:  # noqa: BLE001 - the loader's failure is reported elsewhere; count the files alone
            main = None
        return code_bytes(self.submission, main)

    def derived(self, compute: Callable[[AuditContext], T]) -> T:
        """`compute(self)`, computed once per context; `compute` (a module-level function) is the key."""
        try:
            return self._derived[compute]
        except KeyError:
            value = self._derived[compute] = compute(self)
            return value
