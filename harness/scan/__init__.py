"""Static code scanners. The TTT order scanner reads the `CodeUnit`s of an `AuditContext` (harness.context:
code to judge, packed scripts unpacked) → model.py (functions, call resolution, val-data flow) → trace.py
(events in program order) → ttt.py (order analysis) → explain.py (wording and severity; the TTT rules' shared
base is rules/_ttt.py). mutate.py holds the semantics-preserving rewrites the tests use. config.py / patterns.py: settings
and shared ast helpers."""
