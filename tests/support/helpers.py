"""Helpers the test suites share: what a finished run directory must hold, the small input sizes that keep
per-spec tests fast, and small data files in the real formats (CIFAR-100 archive, image folder, torchvision
checkpoint). They live outside the installed packages; the root conftest.py has pytest rewrite their asserts."""

from __future__ import annotations

import json
from pathlib import Path

from shared.formats.onnx_check import describe_signature
from shared.model.registry import ARCHITECTURES
from shared.formats.weights_io import read_meta


def small_image_size(arch: str) -> int:
    """Twice the smallest input, so every spatial map (and the flatten before a Linear) is bigger than 1x1."""
    return 2 * ARCHITECTURES[arch].min_image_size


def check_run_directory(run_dir: Path, framework: str, checkpoint_name: str, epochs: int) -> dict:
    """Assert a completed run wrote every artefact; return its metrics."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("framework", "arch", "dataset", "classes", "params_trainable", "seconds", "history"):
        assert key in metrics, f"metrics.json lacks {key}"
    assert metrics["framework"] == framework and metrics["status"] == "complete"
    assert len(metrics["history"]) == epochs
    for record in metrics["history"]:
        assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= record.keys(), record.keys()
    for name in ("split.json", checkpoint_name, "weights.npz", "model.onnx", "curves.png"):
        assert (run_dir / name).is_file(), f"{run_dir} lacks {name}"
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_meta(run_dir / "weights.npz")["arch"] == metrics["arch"]
    classes = len(metrics["classes"])
    size = metrics["image_size"]
    assert describe_signature(run_dir / "model.onnx")["inputs"] == {"images": ["batch", size, size, 3]}
    assert describe_signature(run_dir / "model.onnx")["outputs"] == {"logits": ["batch", classes]}
    assert not [path for path in run_dir.iterdir() if "part" in path.name], "temporary files left behind"
    check_timings(metrics)
    return metrics


def check_timings(metrics: dict) -> None:
    """Every phase of ``shared.util.timings`` recorded, none negative, and together the run's wall time."""
    from shared.util.timings import PHASES

    timings = metrics["timings"]
    assert set(timings) == {*PHASES, "other", "total"}, timings
    assert min(timings.values()) >= 0, timings
    parts = sum(seconds for name, seconds in timings.items() if name != "total")
    assert abs(parts - timings["total"]) < 0.01, f"the phases add up to {parts}, the total is {timings['total']}"


def interrupting_backend(backend, after_epoch: int = 1):
    """The backend with ``fit`` raising KeyboardInterrupt right after epoch ``after_epoch`` was saved, as if Ctrl-C
    arrived at the start of the next epoch."""
    import dataclasses

    def fit_then_interrupt(model, optimizer, train, val, config, on_epoch_end, first_epoch=1, **options):
        def save_then_stop(record):
            on_epoch_end(record)
            if record["epoch"] == after_epoch:
                raise KeyboardInterrupt

        return backend.fit(model, optimizer, train, val, config, save_then_stop, first_epoch, **options)

    return overriding(backend, fit=fit_then_interrupt)


def check_interrupted_run(run_dir: Path, checkpoint_name: str, stderr: str) -> None:
    """An interrupted run is marked so and keeps its finished epoch's files."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and len(metrics["history"]) == 1
    assert (run_dir / checkpoint_name).is_file() and (run_dir / "weights.npz").is_file()
    assert not (run_dir / "model.onnx").exists(), "no export of an unfinished run"
    assert "keeps the 1 finished epoch" in stderr and "--resume" in stderr
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "a stopped run draws its curves"
    check_timings(metrics)


def check_model_follows_spec(model_module, weights_module, arch: str) -> None:
    """A backend's model of ``arch``: per-layer shapes and trainable counts as the spec says, and the shared
    initial weights load and read back unchanged. ``*_module`` are a backend's ``model`` and ``weights``."""
    import numpy as np

    from shared.model import shapes
    from shared.model.init import initial_weights
    from shared.model.registry import build_spec

    spec = build_spec(arch, 5, small_image_size(arch))
    model = model_module.build_model(spec)
    images = np.random.default_rng(0).uniform(0, 255, (2, spec.image_size, spec.image_size, 3)).astype(np.float32)
    outputs = model_module.layer_outputs(model, spec, images)
    assert {name: value.shape[1:] for name, value in outputs.items()} == dict(shapes.output_shapes(spec))
    assert model_module.trainable_params_by_layer(model, spec) == shapes.trainable_params_by_layer(spec)
    weights = initial_weights(spec, seed=3)
    weights_module.set_weights(model, spec, weights)
    read_back = weights_module.get_weights(model, spec)
    assert all(np.array_equal(read_back[name], weights[name]) for name in weights)


# The 100 fine labels of CIFAR-100, in the order of the official ``meta`` pickle.
CIFAR100_FINE_LABELS = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm")


def write_cifar100_archive(path: Path, train_per_class: int = 6, test_per_class: int = 2, seed: int = 0,
                           kind: str = "colour") -> Path:
    """A small ``cifar-100-python.tar.gz`` in the official layout: a ``cifar-100-python/`` folder holding the
    ``train``, ``test`` and ``meta`` pickles with the byte-string keys the real (Python 2) pickles have.

    ``kind="colour"``: each class's images are noise around its own colour, so a few epochs can tell the classes
    apart. ``kind="glyph"``: each class is a small shape of its own, mirror-symmetric like most objects, in a random
    colour at a random place on a noisy background: colour says nothing, and a model must find the shape wherever
    it is, which is what translation-invariant layers and crop-and-flip augmentation are for."""
    import io
    import pickle
    import tarfile

    import numpy as np

    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (100, 3))

    half = rng.random((100, 6, 3)) < 0.5
    cells = np.concatenate([half, half[:, :, ::-1]], axis=2)  # 6x6 cells, left half mirrored
    glyphs = cells.repeat(2, axis=1).repeat(2, axis=2)  # 12x12 pixels: shapes coarser than single pixels

    def glyph_planes(labels: np.ndarray) -> np.ndarray:
        planes = rng.normal(128, 20, (len(labels), 3, 32, 32))
        for plane, label in zip(planes, labels):
            top, left = rng.integers(0, 21, 2)
            window = plane[:, top:top + 12, left:left + 12]
            window[:, glyphs[label]] = rng.integers(0, 256, (3, 1))
        return planes.reshape(len(labels), 3, 1024)

    def part(per_class: int, name: str) -> dict:
        labels = np.repeat(np.arange(100), per_class)
        if kind == "glyph":
            planes = glyph_planes(labels)
        else:
            planes = colours[labels][:, :, None] + rng.normal(0, 30, (len(labels), 3, 1024))
        data = np.clip(planes, 0, 255).astype(np.uint8).reshape(len(labels), 3072)  # R, G, B planes per row
        return {b"filenames": [f"{name}_{index}.png".encode() for index in range(len(labels))],
                b"batch_label": f"{name} batch".encode(), b"fine_labels": labels.tolist(),
                b"coarse_labels": (labels // 5).tolist(), b"data": data}

    meta = {b"fine_label_names": [name.encode() for name in CIFAR100_FINE_LABELS],
            b"coarse_label_names": [f"superclass_{index}".encode() for index in range(20)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in (("train", part(train_per_class, "train")), ("test", part(test_per_class, "test")),
                              ("meta", meta)):
            payload = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def write_image_folder(root: Path, classes: tuple[str, ...] = ("daisy", "rose", "tulip"), per_class: int = 8,
                       seed: int = 0) -> Path:
    """An ImageFolder-style tree of JPEGs and PNGs at mixed sizes and modes (RGB, greyscale, RGBA), with the
    debris real folders carry: ``.ipynb_checkpoints`` (holding an image) and a hidden file."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 23 + 160) % 256])
        for index in range(per_class):
            height, width = rng.integers(20, 90, 2)
            pixels = np.clip(colour + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            if index % 4 == 1:
                image.convert("L").save(folder / f"{name}_{index}.png")
            elif index % 4 == 2:
                image.convert("RGBA").save(folder / f"{name}_{index}.PNG")
            else:
                image.save(folder / f"{name}_{index}.jpg", quality=90)
    checkpoints = root / ".ipynb_checkpoints"
    checkpoints.mkdir(exist_ok=True)
    Image.new("RGB", (30, 30)).save(checkpoints / "stray-checkpoint.jpg")
    (root / classes[0] / ".DS_Store").write_bytes(b"\x00\x01")
    return root


_WRITE_TORCHVISION_CHECKPOINT = """
import sys, torch, torchvision
torch.manual_seed(int(sys.argv[2]))
model = torchvision.models.resnet18()
with torch.no_grad():  # trained-looking BatchNorm statistics, so a wrong mapping of them shows
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.25)
            module.weight.uniform_(0.8, 1.25)
            module.bias.uniform_(-0.1, 0.1)
torch.save(model.state_dict(), sys.argv[1])
"""


def write_torchvision_checkpoint(path: Path, seed: int = 0) -> Path:
    """A ResNet-18 checkpoint in torchvision's own format (``torch.save`` of ``resnet18().state_dict()``, 1000
    classes), written by torchvision in a child process so that any test, of either backend, can make one."""
    import subprocess
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _WRITE_TORCHVISION_CHECKPOINT, str(path), str(seed)], check=True)
    return path


def check_lab_artefacts(run_dir: Path) -> None:
    """The lab outputs a student would otherwise make by hand."""
    for name in ("summary.txt", "classification_report.txt", "classification_report.json", "predictions.png"):
        assert (run_dir / name).is_file(), f"{run_dir} lacks {name}"
    report = (run_dir / "classification_report.txt").read_text()
    assert "train (" in report and "validation (" in report and "precision" in report
    assert (run_dir / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_every_experiment(framework: str, backend, tmp_path: Path, monkeypatch) -> dict:
    """Each lab end to end at small sizes through ``shared.commands.train.main``; returns metrics per experiment.
    ``CNNLAB_HOME`` points into ``tmp_path``, so nothing is read from or written to the user's cache."""
    import json

    from shared.commands.train import main

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    folder = write_image_folder(tmp_path / "flowers", per_class=6)
    archive = write_cifar100_archive(tmp_path / "cifar-100-python.tar.gz", 6, 2)
    checkpoint = write_torchvision_checkpoint(tmp_path / "resnet18-test.pth")
    runs = {
        "flowers": ["--data", str(folder), "--image-size", "16", "--epochs", "2"],
        "flowers-resnet18": ["--data", str(folder), "--image-size", "32", "--epochs", "1", "--weights",
                             str(checkpoint)],
        "cifar100-pooling": ["--data", str(archive), "--epochs", "2"],
    }
    results = {}
    for experiment, flags in runs.items():
        out = tmp_path / "runs" / experiment
        assert main(framework, lambda: backend, ["--experiment", experiment, *flags, "--out", str(out)]) == 0
        results[experiment] = out
    results["metrics"] = {experiment: json.loads((out / "best" / "metrics.json" if (out / "best").exists()
                                                  else out / "metrics.json").read_text())
                          for experiment, out in list(results.items())}
    results["checkpoint"] = checkpoint
    return results


def check_flowers_run(runs: dict, framework: str, checkpoint_name: str) -> None:
    check_run_directory(runs["flowers"], framework, checkpoint_name, epochs=2)
    check_lab_artefacts(runs["flowers"])
    assert runs["metrics"]["flowers"]["classes"] == ["daisy", "rose", "tulip"]


def check_fine_tuning_run(runs: dict, framework: str, checkpoint_name: str) -> None:
    """Only the head trained, and it started from the checkpoint: the frozen backbone, BatchNorm statistics
    included, still holds the checkpoint's values after training."""
    import numpy as np

    from shared.model.registry import build_spec
    from shared.formats.weights_io import load_weights

    run = runs["flowers-resnet18"]
    metrics = check_run_directory(run, framework, checkpoint_name, epochs=1)
    check_lab_artefacts(run)
    assert metrics["trainable"] == ["fc.weight", "fc.bias"]
    assert metrics["params_trainable"] == 512 * 3 + 3, "a 3-class head on 512 features, by hand"
    ported = next((run.parent.parent / "home" / "weights").glob("resnet18-test-*.npz"))
    start = load_weights(ported, build_spec("resnet18", 1000, 224))
    trained = np.load(run / "weights.npz")
    for name in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.1.running_mean"):
        assert np.array_equal(trained[name], start[name]), f"{name} changed in a frozen backbone"
    assert read_meta(run / "weights.npz")["classes"] == 3


def check_pooling_study(runs: dict, framework: str, checkpoint_name: str) -> None:
    import json

    study = runs["cifar100-pooling"]
    for variant in ("cifar_cnn_stride", "cifar_cnn_max", "cifar_cnn_avg"):
        metrics = check_run_directory(study / variant, framework, checkpoint_name, epochs=2)
        assert metrics["params_trainable"] == 21_699, "3 classes: 2432 + 18496 + 771, as the lab states"
    table = (study / "comparison.md").read_text()
    assert "**(best)**" in table and "chosen by" in table
    best = json.loads((study / "comparison.json").read_text())["best"]
    assert read_meta(study / "best" / "weights.npz")["arch"] == best
    assert (study / "best" / "model.onnx").is_file() and (study / "best" / checkpoint_name).is_file()
    report = (study / "report.md").read_text()
    assert all(variant in report for variant in ("cifar_cnn_stride", "cifar_cnn_max", "cifar_cnn_avg"))
    assert "](study.png)" in report and f"]({best}/predictions.png)" in report, "the lab report's figures"
    assert (study / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "one figure for all three variants"


def check_fresh_loads_reproduce(runs: dict, framework: str, backend, monkeypatch, capsys) -> None:
    """``evaluate`` in a fresh model, from the native checkpoint and from the neutral weights."""
    from shared.commands.evaluate import main as evaluate

    monkeypatch.setenv("CNNLAB_HOME", str(runs["flowers"].parent.parent / "home"))
    for experiment in ("cifar100-pooling", "flowers-resnet18"):
        assert evaluate(framework, lambda: backend, [str(runs[experiment])]) == 0
        assert evaluate(framework, lambda: backend, [str(runs[experiment]), "--neutral"]) == 0
    assert capsys.readouterr().out.count(": reproduced") == 4


def final_state(model_dir: Path) -> dict:
    """The last checkpoint's neutral weights and Adam state, as one flat dict (step included)."""
    import numpy as np

    from shared.formats import checkpoints, rundir

    latest = checkpoints.latest(model_dir)
    arrays = {}
    for name in (rundir.WEIGHTS, rundir.OPTIMIZER):
        with np.load(latest.path(name), allow_pickle=False) as archive:
            arrays.update({f"{name}:{key}": archive[key] for key in archive.files})
    return arrays


def differences(a: dict, b: dict) -> list[str]:
    """The names whose arrays are not bit-identical."""
    import numpy as np

    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
    return sorted(name for name in a if not np.array_equal(a[name], b[name]))


def train(backend, argv: list[str]) -> int:
    """The train command in this process, with the backend already loaded: its exit status."""
    from shared.commands.train import main

    return main(backend.framework, lambda: backend, argv)


def default_run(backend, run_dir: Path, epochs: int) -> Path:
    """A finished run of the default experiment for ``epochs`` epochs, in ``run_dir``."""
    assert train(backend, ["--epochs", str(epochs), "--out", str(run_dir)]) == 0
    return run_dir



def executorch_installed() -> bool:
    """Whether ExecuTorch (the mobile extra) is here. Colab's stack cannot install it (its scikit-learn is too old;
    docs/use-the-model.md, "On a phone"), so there its tests leave the ExecuTorch file out; anywhere else it must be
    installed (``make test`` installs it) and its absence fails the test that needs it."""
    import importlib.util
    import os

    if importlib.util.find_spec("executorch") is not None:
        return True
    assert os.environ.get("CNNLAB_STACK") == "colab", \
        "executorch is not installed; install the mobile extra: pip install -c constraints.txt -e '.[test,mobile]'"
    return False


def overriding(backend, **members):
    """``backend`` with some of its members replaced, as a subclass (the backend contract is a class,
    ``shared.training.backend.Backend``): a function replaces a method and takes the method's arguments without
    ``self``; anything else (``framework``, ``exporters``) replaces the attribute."""
    replaced = {name: staticmethod(value) if callable(value) and not isinstance(value, type) else value
                for name, value in members.items()}
    return type(f"Overriding{type(backend).__name__}", (type(backend),), replaced)()


def phone_format(backend) -> str:
    """The phone format ``backend`` writes besides ONNX: ExecuTorch (PyTorch) or LiteRT (Keras)."""
    return next(name for name in backend.exporters if name != "onnx")


def write_sidecar(path, description: dict) -> None:
    """An exported file's sidecar, as the export command writes it (its description of the file)."""
    from shared.formats.exported import sidecar_path, sidecar_text

    sidecar_path(path).write_text(sidecar_text(description))
