"""The study's lab report on a made-up study directory: one seed and three seeds per arm, the pooling study (with
best/) and the improved one (with a gain). The expected numbers are worked out here from the values written, with
the standard library, not with the code under test."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from shared.run.trained import find_run
from shared.report.study_report import mean_curves, plot_study, write_study_report

CLASSES = ["apple", "orange", "pear"]
POOLING = {"cifar_cnn_stride": "cifar_cnn_stride", "cifar_cnn_max": "cifar_cnn_max", "cifar_cnn_avg": "cifar_cnn_avg"}
IMPROVED = {"baseline": "cifar_cnn_avg", "improved": "cifar_improved"}
PLAIN = {"lr_schedule": "constant", "weight_decay": 0.0, "augment_padding": 0, "augment_flip": False}
RECIPES = {"improved": {"lr_schedule": "cosine", "weight_decay": 5e-4, "augment_padding": 4, "augment_flip": True}}
MODEL_FILES = {"torch": ("model.pt", "weights.npz", "model.onnx"), "tf": ("model.keras", "weights.npz", "model.onnx")}


def history(final: float) -> list[dict]:
    """Four epochs ending at ``final``; the best epoch is the second, 3 points higher."""
    val_acc = [final - 0.2, final + 0.03, final - 0.01, final]
    val_loss = [1.0, 0.8, 0.7, 0.75]
    return [{"epoch": epoch + 1, "train_loss": loss - 0.1, "train_acc": acc + 0.1, "val_loss": loss, "val_acc": acc}
            for epoch, (acc, loss) in enumerate(zip(val_acc, val_loss))]


def write_run(folder: Path, framework: str, arch: str, arm: str, seed: int, final: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"epochs": 4, "batch_size": 32, "lr": 1e-3, "seed": seed, **RECIPES.get(arm, PLAIN)}
    metrics = {"framework": framework, "framework_version": "9.9.9", "arch": arch, "dataset": "CIFAR-100 (apple, "
               "orange, pear)", "classes": CLASSES, "image_size": 32, "params_trainable": 1000 + len(arch),
               "device": "cpu", "precision": "32-true", "config": config, "train_images": 1500, "val_images": 300,
               "seconds": 10.0 + seed, "history": history(final), "status": "complete"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    # Each arm's per-class scores carry its own final accuracy, so the test can tell whose table the report shows.
    scores = {name: {"precision": final, "recall": 0.5, "f1-score": 0.25, "support": 100} for name in CLASSES}
    (folder / "classification_report.json").write_text(json.dumps({"train": {}, "validation": {
        **scores, "accuracy": final, "macro avg": scores["apple"], "weighted avg": scores["apple"]}}))
    for name in ("curves.png", "predictions.png", "summary.txt", *MODEL_FILES[framework]):
        (folder / name).write_bytes(b"stand-in")


def row(arch: str, arm: str, runs: list[str], finals: list[float]) -> dict:
    """An arm's comparison.json row, as the runner computes it (sample std, ddof=1; 0.0 for one seed)."""
    bests = [final + 0.03 for final in finals]
    std = statistics.stdev if len(finals) > 1 else (lambda values: 0.0)
    return {"arch": arch, "recipe": RECIPES.get(arm, PLAIN), "runs": runs,
            "final_val_acc": statistics.mean(finals), "final_val_acc_std": std(finals), "final_val_accs": finals,
            "best_val_acc": statistics.mean(bests), "best_val_acc_std": std(bests), "best_val_accs": bests,
            "seconds": 10.0 + (len(finals) - 1) / 2, "params_trainable": 1000 + len(arch), "acc_gap": 0.1,
            "val_loss_rise": 0.05}


def make_study(root: Path, experiment: str, framework: str, finals: dict[str, list[float]]) -> dict:
    """A study directory with the runner's layout; ``finals``: arm -> each seed's final validation accuracy."""
    arms = IMPROVED if experiment == "cifar100-improved" else POOLING
    repeats = len(next(iter(finals.values())))
    variants = {}
    for arm, arch in arms.items():
        runs = [arm] if repeats == 1 else [f"{arm}/seed-{seed}" for seed in range(repeats)]
        for seed, (run, final) in enumerate(zip(runs, finals[arm])):
            write_run(root / run, framework, arch, arm, seed, final)
        if repeats > 1:  # the arm's folder is a copy of its first seed's run
            write_run(root / arm, framework, arch, arm, 0, finals[arm][0])
        variants[arm] = row(arch, arm, runs, finals[arm])
    best = max(variants, key=lambda arm: variants[arm]["final_val_acc"])
    comparison = {"framework": framework, "experiment": experiment, "title": f"{experiment}: test, {framework}",
                  "repeats": repeats, "seeds": list(range(repeats)), "rule": "highest final validation accuracy",
                  "best": best, "variants": variants}
    if experiment == "cifar100-improved":
        base, new = variants["baseline"], variants["improved"]
        spread = base["final_val_acc_std"] + new["final_val_acc_std"] if repeats > 1 else None
        difference = new["final_val_acc"] - base["final_val_acc"]
        comparison["gain"] = {"baseline": "baseline", "improved": "improved", "final_val_acc": difference,
                              "best_val_acc": new["best_val_acc"] - base["best_val_acc"], "spread": spread,
                              "exceeds_spread": None if spread is None else difference > spread}
    else:
        write_run(root / "best", framework, arms[best], best, 0, finals[best][0])
    (root / "comparison.json").write_text(json.dumps(comparison))
    return comparison


def percent(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.2f}%"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}%"


STUDIES = {
    "pooling-1-seed": ("cifar100-pooling", "torch", {"cifar_cnn_stride": [0.55], "cifar_cnn_max": [0.62],
                                                     "cifar_cnn_avg": [0.58]}),
    "pooling-3-seeds": ("cifar100-pooling", "tf", {"cifar_cnn_stride": [0.50, 0.54, 0.52],
                                                   "cifar_cnn_max": [0.60, 0.66, 0.63],
                                                   "cifar_cnn_avg": [0.57, 0.58, 0.62]}),
    "improved-1-seed": ("cifar100-improved", "tf", {"baseline": [0.61], "improved": [0.66]}),
    # gain 10 pp against a spread of 1 + 1 pp
    "improved-exceeds": ("cifar100-improved", "torch", {"baseline": [0.60, 0.62, 0.61],
                                                        "improved": [0.70, 0.72, 0.71]}),
    # gain 2 pp against a spread of 2 + 2 pp
    "improved-within-noise": ("cifar100-improved", "torch", {"baseline": [0.60, 0.64, 0.62],
                                                             "improved": [0.62, 0.66, 0.64]}),
}


@pytest.fixture(params=sorted(STUDIES))
def study(request, tmp_path):
    experiment, framework, finals = STUDIES[request.param]
    comparison = make_study(tmp_path, experiment, framework, finals)
    report = write_study_report(tmp_path, comparison)
    return request.param, tmp_path, comparison, finals, report.read_text()


def test_the_report_and_figure_are_written(study):
    _, root, _, _, text = study
    assert (root / "report.md").read_text() == text
    assert (root / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "study.png is not a PNG"
    assert not list(root.glob(".part-*")), "a temporary file was left behind"


def test_every_arm_has_its_mean_and_std(study):
    _, _, comparison, finals, text = study
    for arm, values in finals.items():
        row_line = next((line for line in text.splitlines() if line.startswith(f"| {arm}")
                         and "%" in line), None)
        assert row_line is not None, f"no results row for {arm}"
        assert percent(values) in row_line, f"{arm}: expected final {percent(values)} in {row_line!r}"
        assert percent([value + 0.03 for value in values]) in row_line, f"{arm}: best accuracy missing"
    best = max(finals, key=lambda arm: statistics.mean(finals[arm]))
    assert f"| {best} **(best)** |" in text, f"{best} is not marked best"
    assert comparison["best"] == best


def test_links_point_at_files_that_exist(study):
    _, root, _, _, text = study
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert "study.png" in targets and any(target.endswith("predictions.png") for target in targets)
    for target in targets:
        assert not Path(target).is_absolute(), f"{target}: the report must use relative links"
        assert (root / target).is_file(), f"the report links {target}, which does not exist"
    assert "(missing)" not in text


def test_the_per_class_table_is_the_best_arms(study):
    _, _, comparison, finals, text = study
    precision = finals[comparison["best"]][0]  # the arm's folder holds its first seed's model
    assert f"| pear | {precision:.4f} | 0.5000 | 0.2500 | 100 |" in text
    assert f"{comparison['best']}/predictions.png" in text


def test_the_reload_commands_name_the_framework_and_folder(study):
    name, root, comparison, _, text = study
    framework = comparison["framework"]
    other = "tf" if framework == "torch" else "torch"
    folder = "best" if name.startswith("pooling") else comparison["best"]
    assert f"python -m cnnlab_{framework}.evaluate .  #" in text
    assert f"python -m cnnlab_{framework}.evaluate {folder} --neutral" in text
    assert f"python -m cnnlab_{other}.evaluate {folder}  #" in text
    assert f"from cnnlab_{framework}.backend import BACKEND" in text
    assert f'InferenceSession("{folder}/model.onnx"' in text and '{"images": images}' in text
    assert f"{folder}/{'model.pt' if framework == 'torch' else 'model.keras'}" in text
    # "evaluate ." must reach the folder the report names
    assert find_run(root) == root / folder, f"evaluate . picks {find_run(root)}, the report names {folder}/"


def test_the_python_snippets_compile(study):
    _, _, _, _, text = study
    snippets = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(snippets) == 2, f"expected the framework and the onnxruntime snippets, found {len(snippets)}"
    for snippet in snippets:
        compile(snippet, "report.md", "exec")


@pytest.mark.parametrize("name", ["improved-1-seed", "improved-exceeds"])
def test_the_improved_arm_recipe_is_in_the_setup(tmp_path, name):
    experiment, framework, finals = STUDIES[name]
    text = write_study_report(tmp_path, make_study(tmp_path, experiment, framework, finals)).read_text()
    lines = text.splitlines()
    improved = next((line for line in lines if line.startswith("| improved | `cifar_improved`")), None)
    assert improved is not None, "no setup row for the improved arm"
    assert "| cosine | 0.0005 | random crop with padding 4 + horizontal flip |" in improved, improved
    baseline = next(line for line in lines if line.startswith("| baseline | `cifar_cnn_avg`"))
    assert "| constant | 0 | none |" in baseline, baseline


@pytest.mark.parametrize("name, verdict", [("improved-exceeds", "exceeds"),
                                           ("improved-within-noise", "does not exceed"),
                                           ("improved-1-seed", None)])
def test_the_gain_verdict(tmp_path, name, verdict):
    experiment, framework, finals = STUDIES[name]
    text = write_study_report(tmp_path, make_study(tmp_path, experiment, framework, finals)).read_text()
    gain = statistics.mean(finals["improved"]) - statistics.mean(finals["baseline"])
    assert f"{100 * gain:+.2f} pp" in text
    if verdict is None:
        assert "one seed per arm, so the spread is unknown: run --repeats 3" in text
        assert "exceed" not in text
        return
    spread = statistics.stdev(finals["baseline"]) + statistics.stdev(finals["improved"])
    sign = ">" if verdict == "exceeds" else "≤"
    assert f"({100 * gain:+.2f} pp {sign} {100 * spread:.2f} pp, the sum of the two arms' standard deviations)" in text
    assert f"**{verdict}**" in text
    wrong = "does not exceed" if verdict == "exceeds" else "exceeds"
    assert f"**{wrong}**" not in text, f"the report says both {verdict!r} and {wrong!r}"


def test_mean_curves_by_hand():
    histories = [[{"val_acc": 0.5}, {"val_acc": 0.6}, {"val_acc": 0.7}],
                 [{"val_acc": 0.7}, {"val_acc": 0.8}],  # stopped an epoch early: only the common prefix counts
                 [{"val_acc": 0.6}, {"val_acc": 1.0}, {"val_acc": 0.2}]]
    mean, std = mean_curves(histories, "val_acc")
    # epoch 1: 0.5, 0.7, 0.6 -> mean 0.6, sample std sqrt((0.01 + 0.01 + 0) / 2) = 0.1
    # epoch 2: 0.6, 0.8, 1.0 -> mean 0.8, sample std sqrt((0.04 + 0 + 0.04) / 2) = 0.2
    np.testing.assert_allclose(mean, [0.6, 0.8], err_msg="mean over the repeats")
    np.testing.assert_allclose(std, [0.1, 0.2], err_msg="sample std over the repeats")
    mean, std = mean_curves(histories[:1], "val_acc")
    np.testing.assert_allclose(mean, [0.5, 0.6, 0.7], err_msg="one repeat is its own curve")
    np.testing.assert_allclose(std, [0.0, 0.0, 0.0], err_msg="one repeat has no spread")


def test_plot_study_with_repeats_of_different_lengths(tmp_path):
    comparison = make_study(tmp_path, "cifar100-improved", "torch", STUDIES["improved-exceeds"][2])
    metrics_path = tmp_path / "improved" / "seed-2" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["history"] = metrics["history"][:3]
    metrics_path.write_text(json.dumps(metrics))
    path = plot_study(tmp_path, comparison, tmp_path / "figure.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the figure is not a PNG"
