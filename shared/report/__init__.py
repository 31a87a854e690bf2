"""Layer 4: what a person reads after a run: classification reports, curves and the study tables."""
