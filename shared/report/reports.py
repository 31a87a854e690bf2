"""What a finished run reports besides its curves: per-class precision/recall/F1, a model summary table, and (for
a study) the comparison of its variants. Plain text and JSON, written into the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.formats import history as keys
from shared.util.atomic import atomic_path
from shared.training.metrics import class_scores
from shared.training.precision import DEFAULT_PRECISION, PRECISIONS
from shared.model.shapes import output_shapes, trainable_params_by_layer
from shared.model.specs import ModelSpec


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as part:
        part.write_text(text)
    return Path(path)


def classification_reports(parts: dict[str, tuple[np.ndarray, np.ndarray]], class_names: tuple[str, ...],
                           skipped: tuple[str, ...] = ()) -> tuple[str, dict]:
    """Per-class precision, recall and F1 for each part ("train", "validation"): (labels, logits), as text and as
    data, in the layout of scikit-learn's ``classification_report`` (``digits=4`` / ``output_dict=True``)."""
    text: list[str] = []
    data: dict[str, Any] = {}
    for part, (labels, logits) in parts.items():
        rows = report_rows(labels, logits.argmax(axis=1), class_names)
        text.append(f"{part} ({len(labels)} images)\n{report_text(rows)}")
        data[part] = {name: (row if name == "accuracy" else dict(zip(_REPORT_COLUMNS, row)))
                      for name, row in rows.items()}
    if skipped:
        text.append(f"{len(skipped)} unreadable image(s) skipped: {', '.join(skipped)}\n")
        data["skipped_images"] = list(skipped)
    return "\n".join(text), data


_REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")


def report_rows(labels: np.ndarray, predicted: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Each class's (precision, recall, F1, support), "accuracy", and the macro and support-weighted averages.
    Written here rather than imported from scikit-learn, whose import costs a short run half a second; the tests
    hold it to scikit-learn's output."""
    scores = class_scores(labels, predicted, len(class_names))
    columns = (scores.precision, scores.recall, scores.f1)
    rows: dict[str, float | tuple[float, ...]] = {
        name: (*(float(column[index]) for column in columns), float(scores.support[index]))
        for index, name in enumerate(class_names)}
    total = float(scores.support.sum())
    rows["accuracy"] = float(np.sum(labels == predicted)) / total
    rows["macro avg"] = (*(float(np.mean(column)) for column in columns), total)
    rows["weighted avg"] = (*(float(np.average(column, weights=scores.support)) for column in columns), total)
    return rows


def report_text(rows: dict, digits: int = 4) -> str:
    """``report_rows`` as scikit-learn's ``classification_report`` prints them."""
    names = [name for name in rows if name not in ("accuracy", "macro avg", "weighted avg")]
    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    lines = [f"{'':>{width}} " + "".join(f" {column:>9}" for column in _REPORT_COLUMNS), ""]

    def row(name: str, precision: float, recall: float, f1: float, support: float) -> str:
        return f"{name:>{width}}  {precision:>9.{digits}f} {recall:>9.{digits}f} {f1:>9.{digits}f} {int(support):>9}"

    lines += [row(name, *rows[name]) for name in names] + [""]
    total = rows["macro avg"][3]
    lines.append(f"{'accuracy':>{width}}  {'':>9} {'':>9} {rows['accuracy']:>9.{digits}f} {int(total):>9}")
    lines += [row(name, *rows[name]) for name in ("macro avg", "weighted avg")]
    return "\n".join(lines) + "\n"


def one_line_summary(part: str, report: dict, images: int, path: Path) -> str:
    """A part's scikit-learn report (output_dict) in one line, pointing at the file with the full table."""
    macro = report["macro avg"]
    # scikit-learn reports "micro avg" instead of "accuracy" when a class is missing from both labels and predictions
    accuracy = report["accuracy"] if "accuracy" in report else report["micro avg"]["recall"]
    return (f"{part} ({images} images): accuracy {accuracy:.4f}, macro precision {macro['precision']:.4f}, "
            f"recall {macro['recall']:.4f}, F1 {macro['f1-score']:.4f}; per class in {path}")


def model_summary(spec: ModelSpec, trainable: list[str] | None = None, precision: str = DEFAULT_PRECISION) -> str:
    """Layers, output shapes (C, H, W, batch left out) and parameter counts, like torchsummary or Keras's summary.
    ``trainable``: the names of the parameters that train, when only some do."""
    counts = trainable_params_by_layer(spec)
    rows = [("layer", "type", "output shape", "parameters")]
    for (name, shape), (_, layer) in zip(output_shapes(spec), spec.layers):
        frozen = trainable is not None and counts[name] and not any(p.startswith(f"{name}.") for p in trainable)
        rows.append((name, type(layer).__name__, str(tuple(shape)), f"{counts[name]:,}" + (" (frozen)" if frozen
                                                                                           else "")))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    total = sum(counts.values())
    lines.append("-" * len(lines[0]))
    lines.append(f"{spec.name}: input {spec.image_size}x{spec.image_size}x3, {spec.classes} classes, "
                 f"{total:,} parameters; precision {precision} ({PRECISIONS[precision].description})")
    if trainable is not None:
        lines.append(f"training {len(trainable)} parameter tensors: {', '.join(trainable)}")
    return "\n".join(lines) + "\n"


def overfitting(history: list[dict]) -> dict:
    """Train minus validation accuracy at the end, and how far validation loss rose from its minimum."""
    val_losses = [record[keys.VAL_LOSS] for record in history]
    return {"acc_gap": history[-1][keys.TRAIN_ACC] - history[-1][keys.VAL_ACC],
            "val_loss_rise": val_losses[-1] - min(val_losses)}


BEST_RULE = ("highest final validation accuracy (mean over the seeds); ties (within 0.5 percentage points) go to "
             "the smaller train-validation accuracy gap")
GAIN_RULE = ("the gain exceeds the spread when the difference of the mean final validation accuracies is larger "
             "than the sum of the two arms' standard deviations over the seeds")


def _spread(values: list[float]) -> float:
    """The sample standard deviation over the seeds (ddof=1, as a report of K runs needs); 0.0 for one run."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def compare_variants(results: dict[str, list[dict]], baseline: str | None = None) -> dict:
    """A study's table: arm -> its numbers over its seeds' runs (``results``: arm -> the runs' metrics.json), the
    best arm by ``BEST_RULE``, and with a ``baseline`` arm the gain of the other arm over it."""
    rows = {}
    for variant, runs in results.items():
        finals = [metrics["history"][-1][keys.VAL_ACC] for metrics in runs]
        bests = [max(record[keys.VAL_ACC] for record in metrics["history"]) for metrics in runs]
        overfit = [overfitting(metrics["history"]) for metrics in runs]
        rows[variant] = {"arch": runs[0]["arch"],
                         "final_val_acc": float(np.mean(finals)), "final_val_acc_std": _spread(finals),
                         "final_val_accs": finals,
                         "best_val_acc": float(np.mean(bests)), "best_val_acc_std": _spread(bests),
                         "best_val_accs": bests,
                         "seconds": float(np.mean([metrics["seconds"] for metrics in runs])),
                         "params_trainable": runs[0]["params_trainable"],
                         "acc_gap": float(np.mean([entry["acc_gap"] for entry in overfit])),
                         "val_loss_rise": float(np.mean([entry["val_loss_rise"] for entry in overfit]))}
    top = max(row["final_val_acc"] for row in rows.values())
    contenders = [variant for variant, row in rows.items() if row["final_val_acc"] >= top - 0.005]
    best = min(contenders, key=lambda variant: rows[variant]["acc_gap"])
    table = {"rule": BEST_RULE, "best": best, "variants": rows}
    if baseline is not None:
        table["gain"] = gain(rows, baseline)
    return table


def gain(rows: dict[str, dict], baseline: str) -> dict:
    """How much the other arm beats ``baseline``, and whether that is more than the seeds' spread (``GAIN_RULE``);
    with one seed per arm the spread is unknown (None)."""
    improved = next(variant for variant in rows if variant != baseline)
    base, new = rows[baseline], rows[improved]
    difference = new["final_val_acc"] - base["final_val_acc"]
    spread = None
    if len(base["final_val_accs"]) > 1:
        spread = base["final_val_acc_std"] + new["final_val_acc_std"]
    return {"baseline": baseline, "improved": improved, "final_val_acc": difference,
            "best_val_acc": new["best_val_acc"] - base["best_val_acc"], "spread": spread,
            "exceeds_spread": None if spread is None else bool(difference > spread), "rule": GAIN_RULE}


def percent(row: dict, key: str) -> str:
    """"61.20%", or "61.20 ± 1.30%" when the row averages several seeds."""
    if len(row[f"{key}s"]) == 1:
        return f"{100 * row[key]:.2f}%"
    return f"{100 * row[key]:.2f} ± {100 * row[f'{key}_std']:.2f}%"


def comparison_markdown(table: dict, title: str) -> str:
    return "\n".join([f"# {title}", "", *comparison_lines(table)])


def comparison_lines(table: dict) -> list[str]:
    """The study's table in markdown, the best arm and the rule that chose it, and the gain where there is one."""
    seeds = len(next(iter(table["variants"].values()))["final_val_accs"])
    lines = []
    if seeds > 1:
        lines += [f"Mean ± sample standard deviation over {seeds} seeds; times, gaps and rises are means.", ""]
    lines += ["| variant | final val acc | best val acc | train time (s) | train-val acc gap | "
              "val loss rise from min | trainable params |", "|---|---|---|---|---|---|---|"]
    for variant, row in table["variants"].items():
        marker = " **(best)**" if variant == table["best"] else ""
        lines.append(f"| {variant}{marker} | {percent(row, 'final_val_acc')} | {percent(row, 'best_val_acc')} | "
                     f"{row['seconds']:.1f} | {100 * row['acc_gap']:+.2f} pp | {row['val_loss_rise']:.4f} | "
                     f"{row['params_trainable']:,} |")
    lines += ["", f"Best variant: **{table['best']}**, chosen by: {table['rule']}.", ""]
    if "gain" in table:
        gain = table["gain"]
        lines += [f"Gain of **{gain['improved']}** over **{gain['baseline']}**: {100 * gain['final_val_acc']:+.2f} "
                  f"pp final validation accuracy ({100 * gain['best_val_acc']:+.2f} pp best); {gain_verdict(gain)}.",
                  ""]
    return lines


def gain_verdict(gain: dict) -> str:
    """Whether the gain stands out of the seeds' noise (``GAIN_RULE``); unknown with one seed per arm."""
    if gain["spread"] is None:
        return "one seed per arm, so the spread is unknown: run --repeats 3 to measure it"
    verdict, sign = ("exceeds", ">") if gain["exceeds_spread"] else ("does not exceed", "≤")
    return (f"it **{verdict}** the spread of the seeds ({100 * gain['final_val_acc']:+.2f} pp {sign} "
            f"{100 * gain['spread']:.2f} pp, the sum of the two arms' standard deviations)")
