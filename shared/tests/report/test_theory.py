"""The theory paragraph (``shared.report.theory``) from hand-made measurements: each claim of the seed's comparison
followed by the figures measured for it, the sentences that change with the figures, and the distributed result
quoted as docs/distributed.md states it."""

import re
from pathlib import Path

import pytest

from shared.report import theory

DISTRIBUTED_PAGE = Path(__file__).resolve().parents[3] / "docs" / "distributed.md"


def latency(median_ms: float, p95_ms: float) -> list[dict]:
    return [{"batch": batch, "median_seconds": batch * median_ms / 1000, "p95_seconds": batch * p95_ms / 1000,
             "calls": 100} for batch in (1, 32)]


def side(framework: str, rows: list[dict], rss_mb: float, device: str = "cpu", gpu_mb: float | None = None) -> dict:
    return {"framework": framework, "device": device, "threads": 1, "runtimes": rows,
            "memory": {"rss_before_bytes": 700e6, "rss_peak_bytes": rss_mb * 1e6, "rss_peak_since": "the steps",
                       "device_peak_bytes": gpu_mb * 1e6 if gpu_mb else None, "device_peak_source": "x"}}


def native(median_ms: float, p95_ms: float) -> dict:
    return {"format": "native", "quantize": None, "file": "model", "check": None, "latency": latency(median_ms, p95_ms)}


def exported(format_name: str, median_ms: float, size: int, check: dict, quantize: str | None = None) -> dict:
    return {"format": format_name, "quantize": quantize, "file": f"model.{format_name}", "bytes": size,
            "check": {**check, "quantize": quantize}, "latency": latency(median_ms, median_ms * 1.1)}


FLOAT = {"checked_images": 359, "predictions_equal": 1.0, "max_abs_diff": 1.1e-05}
INT8 = {"checked_images": 359, "predictions_equal": 0.9944, "max_abs_diff": 0.12, "accuracy_native": 0.9889,
        "accuracy_file": 0.9833}


@pytest.fixture
def entry() -> dict:
    torch_side = side("torch", [native(0.15, 0.19), exported("onnx", 0.036, 96_000, {"checked_images": 8,
                                                                                     "max_abs_diff": 6.7e-06}),
                                exported("executorch", 0.0357, 100_000, FLOAT)], 736)
    tf_side = side("tf", [native(0.25, 0.31), exported("onnx", 0.037, 98_000, FLOAT),
                          exported("litert", 0.0269, 99_000, {**FLOAT, "max_abs_diff": 5.7e-06}),
                          exported("litert", 0.0293, 30_000, INT8, "dynamic-int8")], 767)
    runs = {"a": {"framework": "torch", "device": "cpu", "processes": 1, "replicas": 1},
            "b": {"framework": "tf", "device": "cpu", "processes": 1, "replicas": 1}}
    return {"runs": runs, "onnx": {"argmax_agreement": 1.0, "images": 359},
            "footprint": {"sides": {"a": torch_side, "b": tf_side}}}


def test_files_that_all_agree_fully_are_said_to_agree_on_all_images(entry):
    for side in entry["footprint"]["sides"].values():
        for row in side["runtimes"]:
            if (row.get("check") or {}).get("predictions_equal") is not None:
                row["check"]["predictions_equal"] = 1.0
    deploy = claims(theory.theory_paragraph("cifar_cnn_max", entry))["TensorFlow deploys to phones and many targets"]
    assert "the same class as their models on all of the validation images" in deploy, deploy


def claims(paragraph: str) -> dict[str, str]:
    """Each claim's text, by claim."""
    parts = re.split(r"\n- \*([^*]+):\* ", paragraph)
    return dict(zip(parts[1::2], (part.strip() for part in parts[2::2])))


def test_every_claim_is_followed_by_its_measurements(entry):
    paragraph = theory.theory_paragraph("cifar_cnn_max", entry)
    assert paragraph.startswith("Measured for cifar_cnn_max on this machine.\n\n- *")
    assert paragraph.count("\n- *") == len(theory.CLAIMS), "one list item a claim"
    text = claims(paragraph)
    assert list(text) == ["TensorFlow deploys to phones and many targets", "PyTorch suits small services",
                          "TensorFlow scales", "Both use the GPU"]
    deploy = text["TensorFlow deploys to phones and many targets"]
    assert "PyTorch's run has ONNX and ExecuTorch files" in deploy
    assert "TensorFlow's run has ONNX, LiteRT and LiteRT dynamic-int8 files" in deploy
    # the weakest agreement and the widest float difference, not the best
    assert "on at least 99.44% of the validation images and float32 logits within 1.1e-05" in deploy
    assert "ExecuTorch from PyTorch 0.0357 ms (100 KB)" in deploy and "LiteRT from TensorFlow 0.0269 ms" in deploy
    assert "TensorFlow's int8 file changed validation accuracy by -0.56 points" in deploy
    assert "both frameworks deployed to a phone runtime" in deploy
    service = text["PyTorch suits small services"]
    assert "native PyTorch answered one image in 0.15 ms (p95 0.19 ms) and a batch of 32 in 4.8 ms" in service
    assert "Natively, PyTorch was 1.7x as fast on one image" in service  # 0.25 / 0.15
    assert "The fastest for one image was LiteRT from TensorFlow's run, 0.0269 ms" in service
    assert "peaked at 736 MB in PyTorch and 767 MB in TensorFlow" in service
    scales = text["TensorFlow scales"]
    assert "PyTorch in 1 process with 1 replica" in scales and "so they measure no scaling" in scales
    assert theory.DISTRIBUTED["tf"] in scales and theory.DISTRIBUTED_UNTESTED in scales
    assert "cannot show either framework on a GPU" in text["Both use the GPU"]


def test_the_sentences_follow_the_figures(entry):
    sides, runs = entry["footprint"]["sides"], entry["runs"]
    sides["a"]["runtimes"] = sides["a"]["runtimes"][:2]  # no ExecuTorch file
    sides["b"]["runtimes"][0]["latency"] = latency(0.05, 0.06)  # Keras faster natively
    sides["b"].update(device="cuda (NVIDIA H200)")
    sides["b"]["memory"]["device_peak_bytes"] = 1234e6
    runs["b"].update(device="cuda (NVIDIA H200)", replicas=4)
    text = claims(theory.theory_paragraph("resnet18", entry))
    assert "PyTorch has no phone file in its run yet" in text["TensorFlow deploys to phones and many targets"]
    assert "Natively, TensorFlow was 3x as fast on one image" in text["PyTorch suits small services"]
    assert "TensorFlow in 1 process with 4 replicas" in text["TensorFlow scales"]
    assert "measures no speed-up from more devices" in text["TensorFlow scales"]
    gpu = text["Both use the GPU"]
    assert "TensorFlow on cuda (NVIDIA H200)" in gpu and "GPU peak was 1,234 MB in TensorFlow" in gpu


def test_without_measurements_the_paragraph_says_so(entry):
    for item in entry["footprint"]["sides"].values():
        item.pop("memory")
        for row in item["runtimes"]:
            row.pop("latency")
    text = claims(theory.theory_paragraph("cifar_cnn_max", entry))
    assert text["PyTorch suits small services"] == "Latency was not measured in this compare."


def test_the_distributed_result_is_the_docs():
    page = " ".join(DISTRIBUTED_PAGE.read_text().split())
    for framework, quote in theory.DISTRIBUTED.items():
        for figure in re.findall(r"\d\.\de-\d+", quote):
            assert f"to {figure}" in page or f"end {figure}" in page, \
                f"{framework}: {figure} is not docs/distributed.md's result any more; update theory.DISTRIBUTED"
    assert "Not tested: NCCL, GPUs and several machines" in page
