"""Reference evaluation of a submission's model: sliding-window BPB, score-first TTT, runtime legality checks
(causality flip test, normalisation) and the model adapter. The byte tables BPB divides by are
harness.data.bytetables.

Torch is imported only inside the modules that run a model (sliding, ttt, checks, adapter); `shards` is
numpy-only.
"""
