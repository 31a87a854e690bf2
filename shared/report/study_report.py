"""A study's lab report: ``report.md`` and its figure ``study.png``, written into the study directory from its
comparison.json and the arms' own files (metrics.json, classification_report.json, curves, predictions).

Every link in the report is relative, so the folder can be moved or zipped and handed in as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shared.formats import history as keys
from shared.formats import rundir
from shared.util.atomic import atomic_path
from shared.formats.onnx_check import INPUT_NAME, OUTPUT_NAME
from shared.report.plots import pyplot
from shared.model.registry import ARCHITECTURES
from shared.report.reports import comparison_lines, gain_verdict, percent, write_text

FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "TensorFlow/Keras"}
TASKS = {
    "cifar100-pooling": "compares three ways for the seed CIFAR-100 CNN to shrink its feature maps (a stride-4 "
                        "convolution, 4x4 max pooling, 4x4 average pooling): validation accuracy, training time "
                        "and overfitting, trained on the same data with the same settings",
    "cifar100-improved": "measures whether the improved CNN of the lab report (input BatchNorm, wider convolutions, "
                         "global average pooling), trained with random crops and flips, beats the seed CNN, on the "
                         "same data, over several seeds",
}


def mean_curves(histories: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Per epoch, the mean and sample std (ddof=1, as in comparison.json; 0 for one run) of ``key`` over the
    repeats' histories, on the epochs they all have: an extended repeat may have trained longer than the others."""
    epochs = min(len(history) for history in histories)
    values = np.array([[record[key] for record in history[:epochs]] for history in histories], dtype=float)
    std = values.std(axis=0, ddof=1) if len(histories) > 1 else np.zeros(epochs)
    return values.mean(axis=0), std


def plot_study(run_dir: Path, comparison: dict, path: Path) -> Path:
    """Validation accuracy and cross-entropy per epoch, one line per arm: the mean over its repeats with a band of
    one std either side when it has several."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    repeats = 1
    for arm, row in comparison["variants"].items():
        histories = [rundir.read_json(Path(run_dir) / run / rundir.METRICS, "run's metrics")["history"]
                     for run in row["runs"]]
        repeats = max(repeats, len(histories))
        epochs = [record[keys.EPOCH] for record in histories[0][:min(len(history) for history in histories)]]
        label = arm if len(histories) == 1 else f"{arm} (mean ± std of {len(histories)} seeds)"
        for axis, key in ((axes[0], keys.VAL_ACC), (axes[1], keys.VAL_LOSS)):
            mean, std = mean_curves(histories, key)
            line, = axis.plot(epochs, mean, marker="o", markersize=3, label=label)
            if len(histories) > 1:
                axis.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for axis, title in ((axes[0], "validation accuracy"), (axes[1], "validation cross-entropy")):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    suffix = f" (mean ± std of {repeats} seeds)" if repeats > 1 else ""
    figure.suptitle(comparison.get("title", comparison.get("experiment", "study")) + suffix)
    figure.tight_layout()
    with atomic_path(path) as part:
        figure.savefig(part, dpi=100, format="png")
    plt.close(figure)
    return Path(path)


def _link(run_dir: Path, relative: str, text: str | None = None, image: bool = False) -> str:
    """A relative markdown link (or image); a file the run did not leave is named as missing, not linked."""
    if not (Path(run_dir) / relative).is_file():
        return f"{text or relative} (missing)"
    return f"{'!' if image else ''}[{text or relative}]({relative})"


def _summary(comparison: dict, lead: dict) -> list[str]:
    variants, best = comparison["variants"], comparison["best"]
    repeats = len(variants[best]["runs"])
    task = TASKS.get(comparison.get("experiment") or "",
                     f"trains {', '.join(variants)} on the same data and compares them")
    over = f" (mean ± std over {repeats} seeds)" if repeats > 1 else " (one seed)"
    arch = f" (`{variants[best]['arch']}`)" if variants[best]["arch"] != best else ""
    text = (f"This study {task}. Data: {lead['dataset']}, {lead['train_images']} training and {lead['val_images']} "
            f"validation images. The best arm is **{best}**{arch}, final validation accuracy "
            f"{percent(variants[best], 'final_val_acc')}{over}.")
    if "gain" in comparison:
        gain = comparison["gain"]
        base, new = variants[gain["baseline"]], variants[gain["improved"]]
        text += (f" **{gain['improved']}** reaches {percent(new, 'final_val_acc')} against "
                 f"{percent(base, 'final_val_acc')} for **{gain['baseline']}**: a gain of "
                 f"{100 * gain['final_val_acc']:+.2f} pp; {gain_verdict(gain)}.")
    return [f"# Lab report: {comparison.get('title', comparison.get('experiment', 'study'))}", "", text, ""]


def _augmentation(config: dict) -> str:
    parts = []
    if config.get("augment_padding"):
        parts.append(f"random crop with padding {config['augment_padding']}")
    if config.get("augment_flip"):
        parts.append("horizontal flip")
    return " + ".join(parts) or "none"


def _setup(run_dir: Path, comparison: dict, metrics: dict[str, dict]) -> list[str]:
    lead = next(iter(metrics.values()))
    config, framework = lead["config"], lead["framework"]
    seeds = comparison.get("seeds") or [config["seed"]]
    lines = ["## Setup", "",
             f"- Framework: {FRAMEWORK_NAMES.get(framework, framework)} {lead.get('framework_version', '')} "
             f"(`cnnlab_{framework}`), device {lead.get('device', '?')}, precision {lead.get('precision', '?')}",
             f"- Data: {lead['dataset']}; classes {', '.join(lead['classes'])}; {lead['train_images']} train / "
             f"{lead['val_images']} validation images of {lead['image_size']}x{lead['image_size']} pixels",
             f"- Training: {config['epochs']} epochs, batch size {config['batch_size']}, Adam lr {config['lr']:g} "
             f"(betas {config.get('beta1', 0.9)}/{config.get('beta2', 0.999)}, eps {config.get('eps', 1e-8):g})",
             f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)} repeat{'s' if len(seeds) > 1 else ''} per arm)",
             "", "| arm | architecture | lr schedule | weight decay | augmentation |", "|---|---|---|---|---|"]
    for arm, row in comparison["variants"].items():
        # What the arm's run recorded it trained with wins over the plan's recipe (they agree unless edited).
        recipe = {**row.get("recipe", {}), **metrics[arm]["config"]}
        entry = ARCHITECTURES.get(row["arch"])
        described = f"`{row['arch']}`" + (f": {entry.description}" if entry else "")
        summary = _link(run_dir, f"{arm}/{rundir.SUMMARY}", "layers")
        lines.append(f"| {arm} | {described} ({summary}) | {recipe.get('lr_schedule', 'constant')} | "
                     f"{recipe.get('weight_decay', 0.0):g} | {_augmentation(recipe)} |")
    return lines + [""]


def _results(comparison: dict) -> list[str]:
    return ["## Results", "", *comparison_lines(comparison)]


def _curves(run_dir: Path, comparison: dict) -> list[str]:
    lines = ["## Curves", "",
             _link(run_dir, rundir.STUDY_FIGURE, "validation accuracy and loss of every arm", image=True),
             "", "Each arm's own curves (train and validation, with the batches' 25th-75th percentile band):", ""]
    for arm, row in comparison["variants"].items():
        seeds = [_link(run_dir, f"{run}/{rundir.CURVES}", run.rsplit("/", 1)[-1]) for run in row["runs"]]
        repeats = f" · seeds: {', '.join(seeds)}" if len(row["runs"]) > 1 else ""
        lines.append(f"- {_link(run_dir, f'{arm}/{rundir.CURVES}', arm)}{repeats}")
    return lines + [""]


def _per_class(run_dir: Path, best: str, seed: int) -> list[str]:
    lines = ["## Per-class report", "", f"Validation precision, recall and F1 of **{best}** (its model in `{best}/`, "
             f"seed {seed}):", ""]
    path = Path(run_dir) / best / rundir.REPORT_JSON
    if not path.is_file():
        return lines + [f"{best}/{rundir.REPORT_JSON} (missing)", ""]
    report = rundir.read_json(path, "classification report")["validation"]
    lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, scores in report.items():
        if isinstance(scores, dict):  # "accuracy" is a bare number in scikit-learn's output_dict
            lines.append(f"| {name} | {scores['precision']:.4f} | {scores['recall']:.4f} | {scores['f1-score']:.4f} "
                         f"| {int(scores['support'])} |")
    if "accuracy" in report:
        lines += ["", f"Accuracy: {report['accuracy']:.4f}."]
    return lines + ["", _link(run_dir, f"{best}/{rundir.PREDICTIONS}", "validation images, label / predicted",
                              image=True), ""]


def _best_model(run_dir: Path, comparison: dict, metrics: dict) -> list[str]:
    """Which folder holds the best model (the one ``shared.run.trained.find_run`` picks) and its files."""
    framework = metrics["framework"]
    folder = rundir.BEST if (Path(run_dir) / rundir.BEST / rundir.METRICS).is_file() else comparison["best"]
    best = comparison["best"]
    repeats = ""
    if len(comparison["variants"][best]["runs"]) > 1:
        repeats = f" from its first seed ({metrics['config']['seed']}); each seed's model is in `{best}/seed-<seed>/`"
    size, classes = metrics["image_size"], len(metrics["classes"])
    return ["## Best model and how to reload it", "", f"`{folder}/` holds the model of **{best}**{repeats}:", "",
            f"- {_link(run_dir, f'{folder}/{rundir.NATIVE_CHECKPOINTS.get(framework)}')}: the native "
            f"{FRAMEWORK_NAMES.get(framework, framework)} checkpoint",
            f"- {_link(run_dir, f'{folder}/{rundir.WEIGHTS}')}: framework-neutral weights, loaded by either backend",
            f"- {_link(run_dir, f'{folder}/{rundir.ONNX}')}: ONNX, input `{INPUT_NAME}` [batch, {size}, {size}, 3] "
            f"float32 RGB pixels 0-255 (NHWC, not normalised), output `{OUTPUT_NAME}` [batch, {classes}]", "",
            *_reload_code(folder, metrics)]


def _reload_code(folder: str, metrics: dict) -> list[str]:
    framework, size = metrics["framework"], metrics["image_size"]
    other = "tf" if framework == "torch" else "torch"
    # json.dumps writes the paths and the class list as Python literals, in double quotes.
    checkpoint = json.dumps(f"{folder}/{rundir.NATIVE_CHECKPOINTS.get(framework)}")
    onnx = json.dumps(f"{folder}/{rundir.ONNX}")
    return [
        "Reload it in a fresh process and re-measure its validation accuracy (run from this folder):", "",
        "```bash",
        f"python -m cnnlab_{framework}.evaluate .  # the study's best model, {folder}/, from its native checkpoint",
        f"python -m cnnlab_{framework}.evaluate {folder} --neutral  # the same, from {rundir.WEIGHTS}",
        f"python -m cnnlab_{other}.evaluate {folder}  # in the other framework, from {rundir.WEIGHTS}",
        "```", "", "In Python (paths relative to this folder):", "", "```python",
        "from pathlib import Path", f"from cnnlab_{framework}.backend import BACKEND",
        "from shared.model.registry import build_spec", "",
        f"spec = build_spec({json.dumps(metrics['arch'])}, {len(metrics['classes'])}, {size})  # arch, classes, size",
        f"model = BACKEND.build_model(spec, {json.dumps(metrics.get('precision', '32-true'))})",
        f"BACKEND.load_checkpoint(model, Path({checkpoint}))",
        "```", "", "With onnxruntime alone (no framework needed):", "", "```python",
        "import numpy as np", "import onnxruntime", "from PIL import Image", "",
        f"session = onnxruntime.InferenceSession({onnx}, providers=[\"CPUExecutionProvider\"])",
        f"image = Image.open(\"picture.png\").convert(\"RGB\").resize(({size}, {size}))",
        "images = np.asarray(image, dtype=np.float32)[None]  # NHWC, pixels 0-255: the model normalises them",
        f"logits = session.run([\"{OUTPUT_NAME}\"], {{\"{INPUT_NAME}\": images}})[0]",
        f"print({json.dumps(metrics['classes'])}[int(logits.argmax(axis=1)[0])])",
        "```", ""]


def report_markdown(run_dir: Path, comparison: dict) -> str:
    """The lab report: summary, setup, results, curves, the best arm's per-class scores, and its model."""
    run_dir = Path(run_dir)
    variants = comparison["variants"]
    # The arm's first run: the one its folder holds, and where its settings were recorded.
    metrics = {arm: rundir.read_json(run_dir / row["runs"][0] / rundir.METRICS, "run's metrics")
               for arm, row in variants.items()}
    best = metrics[comparison["best"]]
    sections = [_summary(comparison, best), _setup(run_dir, comparison, metrics), _results(comparison),
                _curves(run_dir, comparison), _per_class(run_dir, comparison["best"], best["config"]["seed"]),
                _best_model(run_dir, comparison, best)]
    return "\n".join(line for section in sections for line in section)


def write_study_report(run_dir: Path, comparison: dict) -> Path:
    """``study.png`` and ``report.md`` in the study directory; returns the report's path."""
    run_dir = Path(run_dir)
    plot_study(run_dir, comparison, run_dir / rundir.STUDY_FIGURE)
    return write_text(run_dir / rundir.STUDY_REPORT, report_markdown(run_dir, comparison))
