"""Reference evaluation of a submission's model: byte tables, sliding-window BPB, score-first TTT,
runtime legality checks (causality flip test, normalisation) and the model adapter.

Torch is imported only inside the modules that run a model (sliding, ttt, checks, adapter); `bytes` and
`shards` are numpy-only.
"""
