"""Layer 6: the measurement primitives the benchmark and the comparison share: latency and memory figures, the
worker protocol (a measuring process per framework, ``worker``), the footprint of exported models and the load on a
served model. Nothing here is a user's command."""
