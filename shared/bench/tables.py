"""The benchmark's report as text (``python -m shared.bench``): a header naming the machine, then one markdown table
per measurement."""

from __future__ import annotations

from shared.bench import latency as bench_latency
from shared.bench import whole_commands


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x"


def _share(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |"
                                                                          for row in rows]


def _training_table(report: dict) -> list[str]:
    header = ["architecture", "px", "steps/epoch", "GFLOP/step", "PyTorch cnnlab ms/step", "bare loop ms/step",
              "cnnlab / bare", "Keras cnnlab ms/step", "model.fit ms/step", "cnnlab / fit", "Keras / PyTorch",
              "PyTorch FLOP/s / peak", "Keras FLOP/s / peak"]
    rows = []
    for row in report["training"]:
        torch, tf = row["torch"], row["tf"]
        rows.append([row["arch"], str(row["image_size"]), str(row["steps"]), f"{row['flops_per_step'] / 1e9:.2f}",
                     _ms(torch["cnnlab_step_seconds"]), _ms(torch["reference_step_seconds"]),
                     _times(report["ratios"]["cnnlab_vs_reference"]["torch"][row["arch"]]),
                     _ms(tf["cnnlab_step_seconds"]), _ms(tf["reference_step_seconds"]),
                     _times(report["ratios"]["cnnlab_vs_reference"]["tf"][row["arch"]]),
                     _times(report["ratios"]["keras_vs_torch"][row["arch"]]),
                     _share(torch["flops_vs_peak"]), _share(tf["flops_vs_peak"])])
    batch = report["training"][0]["batch_size"]
    return [f"Training steps, batch {batch}: cnnlab's fit against the framework's own loop, same model, data and "
            f"Adam"] + _table(header, rows)


def _feature_table(report: dict) -> list[str]:
    features = report["feature_cache"]
    first = features["torch"]
    header = ["framework", "full-model epoch s", "features once s", "head epoch s", "epoch speed-up",
              f"{first['run_epochs']}-epoch run speed-up"]
    rows = [[name, f"{entry['full_epoch_seconds']:.3f}", f"{entry['feature_seconds']:.3f}",
             f"{entry['head_epoch_seconds']:.4f}", _times(entry["epoch_speedup"]), _times(entry["run_speedup"])]
            for name, entry in (("PyTorch", features["torch"]), ("Keras", features["tf"]))]
    return [f"Frozen-feature cache ({first['experiment']}): {first['arch']} at {first['image_size']} px, "
            f"{first['train_images']} train + {first['val_images']} val images, the layers from "
            f"{first['first_trainable']} on train; epochs include validation, as in a run"] + _table(header, rows)


def _pipeline_table(report: dict) -> list[str]:
    pipeline = report["data_pipeline"]
    epochs = pipeline["run_epochs"]
    header = ["pipeline (PyTorch)", "once s", "epoch s", f"{epochs}-epoch first run s"]
    seed, cnnlab = pipeline["seed_epoch_seconds"], pipeline["cnnlab_epoch_seconds"]
    decode = pipeline["cnnlab_decode_seconds"]
    rows = [["seed: ImageFolder(Resize, ToTensor) + DataLoader(num_workers=2)", "-", f"{seed:.3f}",
             f"{epochs * seed:.2f}"],
            ["cnnlab: decode once (shared.data.image_folder), batches gathered on the device",
             f"{decode:.3f} (later runs load it: {pipeline['cnnlab_load_seconds']:.3f})", f"{cnnlab:.4f}",
             f"{decode + epochs * cnnlab:.2f}"],
            ["speed-up", "", _times(pipeline["epoch_speedup"]), _times(pipeline["first_run_speedup"])]]
    return [f"Decode cache against the seed pipeline: {pipeline['images']} JPEGs of 500x375 decoded to "
            f"{pipeline['image_size']} px, batches of {pipeline['batch_size']}"] + _table(header, rows)


def format_report(report: dict) -> str:
    """The report as text: a header naming the machine, then one markdown table per measurement (the latency tables
    alone with ``--latency-only``)."""
    host, versions = report["machine"], report["versions"]
    header = [
        f"cnnlab benchmark, {report['mode']} mode, {report['date']} ({report['seconds']:.0f} s)",
        f"machine: {host['cpu']}, {host['cores']} cores; device: PyTorch {report['devices']['torch']}, "
        f"TensorFlow {report['devices']['tf']}",
        f"torch {versions['torch']} (torchvision {versions['torchvision']}), tensorflow {versions['tensorflow']} "
        f"(keras {versions['keras']}), Python {host['python']}",
    ]
    sections = [header]
    if "training" in report:
        peak = report["peak"]
        header += [
            f"peak: the faster float32 {peak['matmul_size']}x{peak['matmul_size']} matmul, PyTorch "
            f"{peak['flops_per_second']['torch'] / 1e9:.1f} GFLOP/s, TensorFlow "
            f"{peak['flops_per_second']['tf'] / 1e9:.1f} GFLOP/s",
            f"times: steady state, the median of {report['settings']['repeats']} epochs after a warm-up epoch; A / B: "
            f"A's time over B's (above 1, A is slower); speed-up: the time without the cache over the time with it",
        ]
        sections += [_training_table(report), _feature_table(report), _pipeline_table(report),
                     *whole_commands.format_tables(report["commands"], _table)]
    sections += bench_latency.format_tables(report["latency"], _table)
    return "\n\n".join("\n".join(section) for section in sections)
