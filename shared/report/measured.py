"""Reading the measurement records of ``compare`` and the benchmark (``shared.measure.footprint_worker`` writes
them): a runtime's row holds ``latency``, one entry per batch, and an exported file's row its export ``check``."""

from __future__ import annotations


def latency_at(row: dict, batch: int) -> dict | None:
    """A runtime row's figures at ``batch`` (median, p95, calls); None where that batch was not timed."""
    return next((entry for entry in row.get("latency", []) if entry["batch"] == batch), None)


def latency_text(row: dict, batch: int, failed: str) -> str:
    """A table cell: ``median / p95`` in milliseconds at ``batch``, ``failed`` for a runtime that could not be
    timed, "-" where that batch was not timed."""
    if "error" in row:
        return failed
    figures = latency_at(row, batch)
    if figures is None:
        return "-"
    return f"{1000 * figures['median_seconds']:.3g} / {1000 * figures['p95_seconds']:.3g}"


def int8_change(side: dict) -> dict | None:
    """The int8 file's accuracy against the native model's on the validation images its export checked, from a
    run's runtime rows; None without a checked int8 file."""
    check = next((row["check"] for row in side["runtimes"] if row.get("quantize") and row.get("check")
                  and row["check"].get("accuracy_file") is not None), None)
    if check is None:
        return None
    return {"points": 100 * (check["accuracy_file"] - check["accuracy_native"]), "native": check["accuracy_native"],
            "int8": check["accuracy_file"], "predictions_equal": check.get("predictions_equal"),
            "images": check.get("checked_images")}
