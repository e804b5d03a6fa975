"""golfaudit: the pipeline that audits parameter-golf submissions (load → sandbox → measure → evaluate → judge → report)."""

__version__ = "0.1.0"
RULESET = "parameter-golf@4908dc46f (2026-05-02)"
