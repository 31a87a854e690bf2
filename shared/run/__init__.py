"""Layer 5: one run or study from its plan: experiments and their data sources, plans, resume, the feature cache,
the runner, one unit's training (``unit``, ``outcome``) and a study's arms (``study``)."""
