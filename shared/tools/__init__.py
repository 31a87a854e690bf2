"""Layer 8: tools for setting cnnlab up, not for using it (``install``: the notebooks' setup cell)."""
