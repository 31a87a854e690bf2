"""Layer 0, imports nothing else of shared: errors and exit statuses, atomic writes, progress bars, signals, native
stderr filtering, downloads, timings, the environment's versions and ``$CNNLAB_HOME``."""
