"""Layer 5: one run or study from its plan: experiments, plans, resume, the feature cache and the runner."""
