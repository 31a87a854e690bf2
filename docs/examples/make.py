"""Regenerate every example artefact and picture of the docs: ``python docs/examples/make.py``.

It took 9 min 20 s (``time``: user 9 min 8 s) on 2 cores of an AMD EPYC (``lscpu``), shared with other work: the
digits run and the pictures about 2 min, the two studies and the comparison about 7 min, ``outputs.py`` about
1 min. Written into ``docs/examples/``:

- ``curves.png``, ``predictions.png``, ``summary.txt``, ``classification_report.txt``: the default digits run;
- ``layers.png``: the default model (``cifar_cnn_max``, 32 px, 10 classes) drawn from its spec, and
  ``layers-resnet18.png``: ResNet-18 at 224 px (``shared.report.layers``);
- ``tensorboard.png``: TensorBoard showing the digits run in each framework with ``--lr-schedule cosine``;
- ``serve.png``: the serve page (``python -m cnnlab_torch.serve``) after classifying one validation digit;
- ``pooling/`` and ``improved/``: the two CIFAR-100 studies' reports and figures, and ``compare.md`` and
  ``compare.png``: the two frameworks' pooling studies compared (``python -m shared.compare``);
- and what ``outputs.py``'s ``main()`` writes: the command outputs the pages show.

The two screenshots need Chromium (Debian's ``chromium``) and playwright, as ``tests/test_serve_page.py`` does.
The studies and the comparison run on a synthetic archive in the real CIFAR-100 format (the real one needs a
download): each class is a small shape at a random place, in a random colour
(``tests.support.helpers.write_cifar100_archive``, kind "glyph"). Their accuracies say nothing about CIFAR-100; the
layout of the reports is what they show.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# from any folder: the project and its test helpers, and outputs.py beside this file
sys.path[:0] = [str(ROOT), str(HERE)]

import outputs  # noqa: E402  (beside this file: the command outputs the pages show)
from shared.measure.serving import free_port  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (Chromium offline, as the tests launch it)


def run(*args: str, cwd: Path = ROOT, **environment: str) -> None:
    subprocess.run([sys.executable, "-m", *args], check=True, cwd=cwd, env={**os.environ, **environment})


def copy_study(study: Path, target: Path) -> None:
    """A study's reports and figures in their relative places, so the report's links work; the model files
    (checkpoints, weights, ONNX) are left out of the examples."""
    shutil.rmtree(target, ignore_errors=True)
    for path in study.rglob("*"):
        relative = path.relative_to(study)
        wanted = path.suffix in (".md", ".png", ".txt") and "checkpoints" not in relative.parts
        if wanted and (not any(part.startswith("seed-") for part in relative.parts) or path.name == "curves.png"):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / relative)


@contextmanager
def server(command: list[str], probe: str, stop: int, cwd: Path = ROOT):
    """A server started with ``command``, once ``probe`` (a URL) answers; stopped with the signal ``stop`` after."""
    log = tempfile.TemporaryFile()  # not a pipe: a server that logs more than a pipe holds would block
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(probe, timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{' '.join(command)} did not answer at {probe}:\n"
                                       f"{log.read().decode(errors='replace')[-3000:]}") from None
                time.sleep(0.3)
        yield
    finally:
        process.send_signal(stop)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def browser_page(width: int, height: int):
    """A page of headless Chromium, ``width`` x ``height`` CSS pixels."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def digits_run(temp: Path) -> Path:
    """The default digits run (about 20 s); its curves, prediction grid, summary and report."""
    run("cnnlab_torch.train", "--out", str(temp / "digits"))
    for name in ("curves.png", "predictions.png", "summary.txt", "classification_report.txt"):
        shutil.copy(temp / "digits" / name, HERE / name)
    return temp / "digits"


def layers_pictures() -> None:
    """layers.png and layers-resnet18.png, from the specs alone (about 1 s)."""
    from shared.model.registry import build_spec
    from shared.report.layers import draw_layers

    draw_layers(build_spec("cifar_cnn_max", 10, 32), HERE / "layers.png")
    draw_layers(build_spec("resnet18", 1000, 224), HERE / "layers-resnet18.png")


def tensorboard_picture(temp: Path) -> None:
    """tensorboard.png: the digits in each framework with a cosine rate, in TensorBoard's time series (about a
    minute in all)."""
    logs = temp / "tensorboard"
    for framework in ("torch", "tf"):
        run(f"cnnlab_{framework}.train", "--lr-schedule", "cosine", "--out", str(logs / f"{framework}-digits"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1", "--port",
               str(port)]
    with server(command, url, signal.SIGTERM), browser_page(1400, 1200) as page:
        # TensorBoard's own stored settings, read as it starts: the settings pane closed, and cards at least 485 px
        # wide, two to a row with their tables whole
        page.add_init_script("localStorage.setItem('_tb_global_settings', JSON.stringify("
                             "{timeSeriesSettingsPaneOpened: false, timeSeriesCardMinWidth: 485}))")
        page.goto(url + "#timeseries")
        page.wait_for_selector("scalar-card >> text=batch/loss", timeout=60_000)
        page.wait_for_timeout(2000)  # the charts draw after their data arrives
        page.screenshot(path=HERE / "tensorboard.png")


def serve_picture(digits: Path) -> None:
    """serve.png: the serve page after classifying the first validation digit it gets right (about 10 s)."""
    import numpy as np
    from PIL import Image

    from shared.formats import rundir
    from shared.run.experiments import recorded_validation

    images, labels, _ = recorded_validation(rundir.read_finished_metrics(digits, "make.py"), rundir.read_split(digits))
    port = free_port()
    # Run from the run's parent with a relative name, so that the page shows "digits" and not a temporary path
    command = [sys.executable, "-m", "cnnlab_torch.serve", digits.name, "--no-token", "--port", str(port)]
    with server(command, f"http://127.0.0.1:{port}/v2/health/ready", signal.SIGINT, cwd=digits.parent), \
            browser_page(960, 300) as page:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('classes')")
        for image, label in zip(images, labels):
            photo = digits.parent / f"digit-{label}.png"
            Image.fromarray(image.astype(np.uint8)).save(photo)
            page.evaluate("document.querySelector('#predictions').replaceChildren()")
            page.set_input_files("#files", [str(photo)])
            page.wait_for_selector("#predictions [data-label]")
            if page.get_attribute("#predictions [data-label]", "data-label") == str(label):
                break
        page.screenshot(path=HERE / "serve.png", full_page=True)


def studies(temp: Path) -> None:
    """The two CIFAR-100 studies and the framework comparison on the synthetic archive (most of the time)."""
    from tests.support.helpers import write_cifar100_archive

    archive = write_cifar100_archive(temp / "cifar-100-python.tar.gz", train_per_class=100, test_per_class=30,
                                     kind="glyph")
    for framework in ("torch", "tf"):
        run(f"cnnlab_{framework}.train", "--experiment", "cifar100-pooling", "--data", str(archive), "--epochs",
            "30", "--out", str(temp / framework), CNNLAB_HOME=str(temp / "home"))
    copy_study(temp / "torch", HERE / "pooling")
    # The phone files of every variant, so that the comparison shows their sizes, latency and the int8 change
    for variant in ("cifar_cnn_stride", "cifar_cnn_max", "cifar_cnn_avg"):
        run("cnnlab_torch.export", str(temp / "torch" / variant), "--format", "executorch")
        for quantize in ([], ["--quantize", "dynamic-int8"]):
            run("cnnlab_tf.export", str(temp / "tf" / variant), "--format", "litert", *quantize)
    run("cnnlab_torch.train", "--experiment", "cifar100-improved", "--data", str(archive), "--epochs", "60",
        "--out", str(temp / "improved"), CNNLAB_HOME=str(temp / "home"))
    copy_study(temp / "improved", HERE / "improved")
    # Relative run names, so the report shows "torch" and "tf" rather than a temporary path.
    run("shared.compare", "torch", "tf", "--out", "compare", cwd=temp, CNNLAB_HOME=str(temp / "home"))
    shutil.copy(temp / "compare" / "compare.md", HERE / "compare.md")
    shutil.copy(temp / "compare" / "compare.png", HERE / "compare.png")


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        digits = digits_run(temp)
        layers_pictures()
        tensorboard_picture(temp)
        serve_picture(digits)
        studies(temp)
    outputs.main()


if __name__ == "__main__":
    main()
