"""Which files belong to which run, and the check every file passes before a loader sees it.

A finished run records its model's identity in ``metrics.json``: ``run_id``, new each time the run completes (a run
extended with ``--resume`` holds another model, so the exports of the earlier one stop counting as its files), and
``files``, the size and sha256 of its native checkpoint, its ``weights.npz`` and its ``model.onnx`` (and of each file
``export`` writes into it later). Each exported file records the same identity in its JSON sidecar (run id,
framework, architecture, classes, input size, opset, sha256), and an ONNX file also in its own metadata
(``cnnlab.*`` keys).

``predict``, ``evaluate``, ``export``, ``compare`` and ``serve`` verify a file against its record before they load
it: a file damaged, truncated or swapped for another run's is one line, exit status 2, and no native loader (torch's
unpickler, Keras's archive reader, ExecuTorch's program loader, which aborts the process on garbage) ever sees it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from shared.formats import records, rundir
from shared.util.download import file_digest
from shared.util.errors import WeightsError
from shared.util.paths import not_a_file

METADATA_PREFIX = "cnnlab."  # the ONNX metadata_props keys of a cnnlab export


def new_run_id() -> str:
    return uuid.uuid4().hex


def identity(metrics: dict) -> dict:
    """What every exported file records of the run it came from: its id (None for a run finished before cnnlab
    recorded one), the framework it trained in, its architecture, class names and input size."""
    return {"run_id": metrics.get("run_id"), "trained_in": metrics["framework"], "arch": metrics["arch"],
            "classes": list(metrics["classes"]), "image_size": metrics["image_size"]}


def onnx_metadata(identity_: dict) -> dict[str, str]:
    """The identity as ONNX ``metadata_props``: strings, lists as JSON."""
    return {f"{METADATA_PREFIX}{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in identity_.items() if value is not None}


def identity_from_onnx(path: Path) -> dict[str, str] | None:
    """The identity an ONNX file carries in its metadata (``cnnlab.run_id``, ``cnnlab.arch``, ... as strings), or
    None when it has none: not a cnnlab export, or one written before exports carried it. The protobuf is parsed by
    the onnx package, never by a runtime."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    found = {prop.key[len(METADATA_PREFIX):]: prop.value for prop in model.metadata_props
             if prop.key.startswith(METADATA_PREFIX)}
    return found or None


def sidecar_path(path: Path) -> Path:
    """An exported file's sidecar: ``model.tflite`` -> ``model.tflite.json``."""
    return Path(path).with_name(f"{Path(path).name}.json")


def file_record(path: Path) -> dict:
    """What a file is: its size and sha256."""
    path = Path(path)
    return {"bytes": path.stat().st_size, "sha256": file_digest(path, "sha256")}


def record_files(folder: Path, names: tuple[str, ...]) -> dict[str, dict]:
    """``file_record`` of each of ``names`` present in ``folder``."""
    return {name: file_record(Path(folder) / name) for name in names if (Path(folder) / name).is_file()}


def check_file(path: Path, expected: dict, source: str, remedy: str) -> None:
    """``WeightsError`` unless ``path`` is a regular file with the size and sha256 that ``source`` (in words, "its
    run's metrics.json") records. Sizes first: a truncated file is found without reading it."""
    path = Path(path)
    if not (isinstance(expected, dict) and isinstance(expected.get("bytes"), int)
            and isinstance(expected.get("sha256"), str)):
        raise WeightsError(f"{source} lists {path.name} without its size and sha256, so {path} cannot be verified "
                           f"before loading; {remedy}")
    if not path.is_file():
        raise WeightsError(f"{path} {not_a_file(path)}, but {source} records it; {remedy}")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise WeightsError(f"{path} has {size:,} bytes, but {source} records {expected['bytes']:,}: the file is "
                           f"truncated, damaged or another model's; {remedy}")
    if file_digest(path, "sha256") != expected["sha256"]:
        raise WeightsError(f"{path} does not match the sha256 that {source} records: its contents changed since it "
                           f"was written (damaged, or replaced by another model's file); {remedy}")


def _checkpoint_record(run_dir: Path, metrics: dict, name: str) -> dict | None:
    """``name`` as the manifest of the run's last checkpoint lists it (runs finished before metrics.json recorded
    its files publish their model from there)."""
    manifest = Path(run_dir) / rundir.CHECKPOINTS / f"epoch-{len(metrics['history']):04d}" / rundir.MANIFEST
    try:
        return json.loads(manifest.read_text())["files"][name]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify_run_file(run_dir: Path, metrics: dict, name: str, remedy: str) -> None:
    """Check that ``run_dir/name`` is the run's own file, as recorded: in metrics.json's ``files``, else in a
    sidecar naming this run, else (the model files) in the last checkpoint's manifest. ``WeightsError`` for a file
    that does not match, or that nothing records."""
    run_dir, path = Path(run_dir), Path(run_dir) / name
    files = metrics.get("files")
    if isinstance(files, dict) and name in files:
        check_file(path, files[name], f"its run's {rundir.METRICS}", remedy)
        return
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        description = records.read_record(sidecar, records.SIDECAR)
        claimed, own = description.get("run_id"), metrics.get("run_id")
        if claimed is None or claimed != own:
            raise WeightsError(f"{path} is not {run_dir}'s own file: its {sidecar.name} names the run "
                               f"{description.get('run', '?')} (id {claimed}), and {run_dir} is {own}; move it out "
                               f"of the folder, or {remedy}")
        check_file(path, description, sidecar.name, remedy)
        return
    recorded = _checkpoint_record(run_dir, metrics, name)
    if recorded is not None:
        check_file(path, recorded, "its last checkpoint's manifest", remedy)
        return
    if not path.exists():
        raise WeightsError(f"{path} does not exist; {remedy}")
    raise WeightsError(f"{path} is not recorded by its run ({rundir.METRICS} lists no such file and no sidecar "
                       f"describes it), so it cannot be verified before loading; {remedy}")
