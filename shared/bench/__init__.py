"""Layer 7: the benchmark, ``python -m shared.bench`` (``main``): the training loop against each framework's
reference loop, the whole train commands, the exported files' latency and the served model, as reports."""
