"""Layer 6, the entry points: the train command's parser, the Python API, evaluate, compare, the benchmark
and the installer for Colab."""
