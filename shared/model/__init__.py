"""Layer 1: the framework-neutral model specs, the architecture registry, and what is computed from a spec alone
(shapes, parameter counts, initial weights, weight layouts, FLOPs). Never imports ``shared.data``."""
