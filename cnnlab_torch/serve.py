"""``python -m cnnlab_torch.serve MODEL``: serve a trained model over HTTP (the Open Inference Protocol, image uploads,
metrics and a page to try it). See ``--help`` and ``shared.commands.serve``. Imported, it is also the API function:
``cnnlab_torch.serve(model, port=0)`` returns the running server."""

import sys

from cnnlab_torch import load_backend, runners, serve, set_threads
from shared.commands.api import callable_module
from shared.commands.serve import main

if __name__ == "__main__":
    sys.exit(main("torch", load_backend, runners=runners(), set_threads=set_threads))
else:
    callable_module(__name__, serve)
