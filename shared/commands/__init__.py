"""Layer 7, the user's entry points: train (its parser and the Python API), evaluate, predict, export, serve and
compare. The benchmark is ``shared.bench``; what both measure with is ``shared.measure``."""
