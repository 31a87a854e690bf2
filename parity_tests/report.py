"""``python -m parity_tests.report``: print how far the two frameworks' ONNX exports of every registered spec are
apart, with identical weights, on fresh random images. The parity suite asserts these; this prints the figures."""

if __name__ == "__main__":  # the flags first: --help or a mistyped flag is answered before a framework loads
    from shared.util.flags import OneLineParser, parse_or_exit

    parse_or_exit(OneLineParser(prog="python -m parity_tests.report", description=__doc__.splitlines()[0]), None)

import parity_tests.frameworks  # noqa: F401  (first: the import order of torch, triton and tensorflow)

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from parity_tests.pairs import build_pair, random_images  # noqa: E402
from shared.formats.onnx_check import onnx_logits  # noqa: E402
from shared.model.registry import ARCHITECTURES  # noqa: E402
from shared.formats.tolerances import compare  # noqa: E402


def main() -> None:
    print(f"{'spec':<18} {'input':>7} {'|torch-keras| native':>21} {'|torch-keras| ONNX':>19} "
          f"{'|torch-ONNX|':>13} {'|keras-ONNX|':>13}")
    for arch in sorted(ARCHITECTURES):
        pair = build_pair(arch)
        images = random_images(pair.spec, 7, seed=7)
        with tempfile.TemporaryDirectory() as scratch:
            torch_onnx, keras_onnx = pair.export(Path(scratch))
            torch_onnx_logits, keras_onnx_logits = onnx_logits(torch_onnx, images), onnx_logits(keras_onnx, images)
        torch_logits, keras_logits = pair.logits(images)
        figures = [compare(a, b, "same_weights")[1] for a, b in ((keras_logits, torch_logits),
                                                                  (keras_onnx_logits, torch_onnx_logits),
                                                                  (torch_onnx_logits, torch_logits),
                                                                  (keras_onnx_logits, keras_logits))]
        size = pair.spec.image_size
        print(f"{arch:<18} {f'{size}x{size}':>7} " + " ".join(f"{value:>{width}.2e}" for value, width in
                                                             zip(figures, (21, 19, 13, 13))), flush=True)


if __name__ == "__main__":
    main()
