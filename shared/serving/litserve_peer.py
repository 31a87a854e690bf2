"""The peer the serve benchmark sets beside ``serve``: LitServe serving the same ``model.onnx`` with the same decoder,
for ``POST /predict`` multipart uploads (``python -m shared.serving.litserve_peer MODEL.onnx --port N``). Run by
``python -m shared.bench --serve`` only when LitServe is installed; it is not a dependency of cnnlab.

``--max-batch 1`` serves one request per forward pass; above 1, LitServe's own batching (``max_batch_size`` within
``batch_timeout``) coalesces requests. LitServe runs its workers in processes it spawns, so the API class lives at
module level, where they can import it.
"""

from __future__ import annotations

import argparse
import io

import numpy as np

try:
    import litserve
    from starlette.requests import Request
except ImportError:  # the module still imports for the benchmark to ask whether the peer can run
    litserve = None

if litserve is not None:
    async def _upload_as_bytes(self, request, request_type) -> dict:
        """The first uploaded file as plain bytes: LitServe hands the parsed form to its worker processes as it is,
        and an UploadFile cannot be pickled ("cannot pickle '_io.BufferedRandom' object", LitServe issue #443); the
        override LitServe issue #732 shows for binary bodies."""
        form = await request.form()
        upload = next(value for _, value in form.multi_items() if hasattr(value, "read"))
        return {"name": upload.filename, "data": await upload.read()}

    litserve.server.RegularRequestHandler._prepare_request = _upload_as_bytes

    class OnnxImages(litserve.LitAPI):
        def __init__(self, model: str, **options):
            super().__init__(api_path="/predict", **options)
            self.model = model

        def setup(self, device):
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            self.session = onnxruntime.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])
            self.size = self.session.get_inputs()[0].shape[1]
            self.classes = [str(index) for index in range(self.session.get_outputs()[0].shape[1])]

        def decode_request(self, request: Request):
            from shared.data.image_folder import decode_image

            return request["name"], decode_image(io.BytesIO(request["data"]), self.size).astype(np.float32)

        def batch(self, inputs):
            return [name for name, _ in inputs], np.stack([pixels for _, pixels in inputs])

        def predict(self, x):
            names, images = ([x[0]], x[1][None]) if isinstance(x[0], str) else x  # one request, or a batch
            return names, self.session.run(["logits"], {"images": images})[0]

        def unbatch(self, output):
            names, logits = output
            return [([name], logits[index:index + 1]) for index, name in enumerate(names)]

        def encode_response(self, output):
            from shared.formats.predictions import records

            names, logits = output
            return records(names, logits, self.classes, 5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.serving.litserve_peer")
    parser.add_argument("model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--batch-delay-ms", type=float, default=5.0)
    args = parser.parse_args()
    options = {"max_batch_size": args.max_batch, "batch_timeout": args.batch_delay_ms / 1000} \
        if args.max_batch > 1 else {}
    server = litserve.LitServer(OnnxImages(args.model, **options), accelerator="cpu", workers_per_device=1,
                                timeout=30)
    server.run(host="127.0.0.1", port=args.port, log_level="error", generate_client_file=False)


if __name__ == "__main__":
    main()
