"""``python -m cnnlab_torch.predict MODEL IMAGE_OR_FOLDER...``: classify your own images with a trained model (a run
directory of either framework, or an exported .onnx, .tflite or .pte file). See ``--help`` and
``shared.commands.predict``. Imported, it is also the API function: ``cnnlab_torch.predict(model, images, top=5)``."""

import sys

from cnnlab_torch import load_backend, predict, runners
from shared.commands.api import callable_module
from shared.commands.predict import main

if __name__ == "__main__":
    sys.exit(main("torch", load_backend, runners=runners()))
else:
    callable_module(__name__, predict)
