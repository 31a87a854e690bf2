"""Layer 3: one training loop for both backends, the backend interface, and what it runs on: the config, schedules,
precision modes, metrics, distribution and TensorBoard. A backend's library modules import nothing above it."""
