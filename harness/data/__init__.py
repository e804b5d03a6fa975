"""Local data for re-runs: challenge-format shards, a named local text source, tokenizers, decoy val sets."""
