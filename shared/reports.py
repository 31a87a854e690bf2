"""What a finished run reports besides its curves: per-class precision/recall/F1, a model summary table, and (for
the pooling study) the comparison of its variants. Plain text and JSON, written into the run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.atomic import atomic_path
from shared.precision import DEFAULT_PRECISION, PRECISIONS
from shared.shapes import output_shapes, trainable_params_by_layer
from shared.specs import ModelSpec


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as part:
        part.write_text(text)
    return Path(path)


def classification_reports(parts: dict[str, tuple[np.ndarray, np.ndarray]], class_names: tuple[str, ...],
                           skipped: tuple[str, ...] = ()) -> tuple[str, dict]:
    """scikit-learn's per-class precision, recall and F1 for each part ("train", "validation"): (labels, logits)."""
    from sklearn.metrics import classification_report

    text, data = [], {}
    for part, (labels, logits) in parts.items():
        arguments = dict(y_true=labels, y_pred=logits.argmax(axis=1), labels=list(range(len(class_names))),
                         target_names=list(class_names), zero_division=0)
        text.append(f"{part} ({len(labels)} images)\n{classification_report(digits=4, **arguments)}")
        data[part] = classification_report(output_dict=True, **arguments)
    if skipped:
        text.append(f"{len(skipped)} unreadable image(s) skipped: {', '.join(skipped)}\n")
        data["skipped_images"] = list(skipped)
    return "\n".join(text), data


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
    val_losses = [record["val_loss"] for record in history]
    return {"acc_gap": history[-1]["train_acc"] - history[-1]["val_acc"],
            "val_loss_rise": val_losses[-1] - min(val_losses)}


BEST_RULE = ("highest final validation accuracy; ties (within 0.5 percentage points) go to the smaller "
             "train-validation accuracy gap")


def compare_variants(results: dict[str, dict]) -> dict:
    """The pooling study's table: variant -> its numbers, plus the best variant by ``BEST_RULE``."""
    rows = {}
    for variant, metrics in results.items():
        history = metrics["history"]
        rows[variant] = {"final_val_acc": history[-1]["val_acc"],
                         "best_val_acc": max(record["val_acc"] for record in history),
                         "seconds": metrics["seconds"], "params_trainable": metrics["params_trainable"],
                         **overfitting(history)}
    top = max(row["final_val_acc"] for row in rows.values())
    contenders = [variant for variant, row in rows.items() if row["final_val_acc"] >= top - 0.005]
    best = min(contenders, key=lambda variant: rows[variant]["acc_gap"])
    return {"rule": BEST_RULE, "best": best, "variants": rows}


def comparison_markdown(table: dict, title: str) -> str:
    lines = [f"# {title}", "", "| variant | final val acc | best val acc | train time (s) | train-val acc gap | "
             "val loss rise from min | trainable params |", "|---|---|---|---|---|---|---|"]
    for variant, row in table["variants"].items():
        marker = " **(best)**" if variant == table["best"] else ""
        lines.append(f"| {variant}{marker} | {100 * row['final_val_acc']:.2f}% | {100 * row['best_val_acc']:.2f}% | "
                     f"{row['seconds']:.1f} | {100 * row['acc_gap']:+.2f} pp | {row['val_loss_rise']:.4f} | "
                     f"{row['params_trainable']:,} |")
    lines += ["", f"Best variant: **{table['best']}**, chosen by: {table['rule']}.", ""]
    return "\n".join(lines)

