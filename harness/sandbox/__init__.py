"""Run a submission in a sandbox: namespaces, an unprivileged uid, decoy val data, limits and budgets."""
