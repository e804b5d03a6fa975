"""Runtime proof of score-before-update: run a submission's own evaluation with position provenance
(`provenance`), in a child process (`child`, started by `traced_run`), then read the order of scoring and
training per validation position (`timeline`) into TTT-SCORE-FIRST / TTT-NO-RESCORE findings (`verdict`)."""
