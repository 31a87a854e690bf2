"""The commands that use a trained model (predict, export, evaluate, compare) meet faults as training does: each file
is verified against its run's record before anything loads it, a file of another run is refused, flags are checked
before any work, a record of the wrong shape is one line naming the file and the field, a closed pipe and a stop end
quietly with nothing left behind, a full disk leaves nothing that blocks the retry, data changed since training is
named, linked folders are followed, and every message says what was really wrong. Each fault is produced for real,
on a one-epoch digits run per backend (``python -m tests.scripts.model_fault_probe`` runs the same faults against
any version of the code, for a before-and-after table)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shared.commands.compare import main as compare
from shared.commands.evaluate import main as evaluate
from shared.commands.export import main as export
from shared.commands.predict import main as predict
from shared.formats import rundir
from shared.formats.exported import describe, sidecar_path
from tests.support.helpers import write_sidecar
from tests.support.helpers import phone_format, default_run
from tests.support.mounts import mounted, read_only


@pytest.fixture(scope="module")
def run_dir(backend, tmp_path_factory) -> Path:
    """A finished one-epoch run of the default experiment (cifar_cnn_max on the digits), about 1 s to train."""
    return default_run(backend, tmp_path_factory.mktemp("faults") / "run", epochs=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def copy_of(run: Path, target: Path) -> Path:
    return Path(shutil.copytree(run, target))


def another_run(run: Path, target: Path) -> Path:
    """A copy of ``run`` that is another run: its own id, its ONNX file another model's (one weight changed)."""
    import onnx

    from shared.formats import verified

    other = copy_of(run, target)
    model = onnx.load(str(other / rundir.ONNX))
    weight = model.graph.initializer[0]
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] += 1.0
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(other / rundir.ONNX))
    metrics = json.loads((other / rundir.METRICS).read_text())
    metrics["run_id"] = verified.new_run_id()
    metrics["files"][rundir.ONNX] = verified.file_record(other / rundir.ONNX)
    rundir.write_json(other / rundir.METRICS, metrics)
    return other


def refused_before_loading():
    raise AssertionError("the request should be refused before the backend loads")


def one_error(capsys, prog: str) -> str:
    """The command's one line on stderr (its "error:" line), with no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_predict(backend, *argv) -> int:
    from cnnlab_torch.runtime import mobile_runner

    runners = {"executorch": mobile_runner} if backend.framework == "torch" else None
    return predict(backend.framework, lambda: backend, [str(arg) for arg in argv], runners=runners)


def each_command(backend, run: Path, photos: Path, capsys, load_backend, *export_flags):
    """(command, its one error line) of predict, evaluate and export on ``run``, each refused with exit status 2."""
    framework = backend.framework
    commands = {"predict": lambda: run_predict(backend, run, photos),
                "evaluate": lambda: evaluate(framework, load_backend, [str(run)]),
                "export": lambda: export(framework, load_backend, [str(run), "--format", "onnx",
                                                                   *map(str, export_flags)])}
    for prog, command in commands.items():
        assert command() == 2, prog
        yield prog, one_error(capsys, f"cnnlab_{framework}.{prog}")


# 1. Files are verified before anything loads them


def test_a_model_file_damaged_in_the_middle_is_refused_not_predicted_as_nan(backend, run_dir, photos, tmp_path,
                                                                           capsys):
    """Bytes overwritten in the middle of the native checkpoint, its size kept: predict printed nan% for every class
    with exit status 0. Now predict, evaluate and export refuse it, naming the file and its recorded sha256."""
    run = copy_of(run_dir, tmp_path / "run")
    native = run / backend.checkpoint_name
    data = bytearray(native.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(255 - value for value in data[middle:middle + 64])
    native.write_bytes(bytes(data))
    for prog, error in each_command(backend, run, photos, capsys, lambda: backend, "--out", tmp_path / "x.onnx"):
        assert f"{native} does not match the sha256 that its run's metrics.json records" in error, (prog, error)
    assert not (tmp_path / "x.onnx").exists()


def test_random_bytes_with_a_sidecar_never_reach_the_native_loader(backend, run_dir, photos, tmp_path, capsys):
    """A .pte of random bytes beside a real sidecar aborted the process inside ExecuTorch's loader (exit 134, no
    message). The sidecar's sha256 now refuses it first; a .tflite the same."""
    from shared.formats.runtimes import FORMATS

    format_ = FORMATS[phone_format(backend)]
    garbage = tmp_path / f"model{format_.suffix}"
    garbage.write_bytes(np.random.default_rng(1).bytes(4096))
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    # the sidecar of a real file (here the run's ONNX file stands for the export it described)
    write_sidecar(garbage, describe(format_.name, backend.framework, metrics, run_dir, "test", None, {},
                                    run_dir / rundir.ONNX))
    assert run_predict(backend, garbage, photos) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.predict")
    assert f"{garbage} has 4,096 bytes, but {garbage.name}.json records" in error, error


# 2. Files carry their run's identity


def test_export_refuses_to_write_into_another_runs_directory(backend, run_dir, tmp_path, capsys):
    other = another_run(run_dir, tmp_path / "other")
    before = (other / rundir.ONNX).read_bytes()
    assert export(backend.framework, refused_before_loading, [str(run_dir), "--format", "onnx", "--out",
                                                              str(other / rundir.ONNX)]) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.export")
    assert f"is inside {other.resolve()}, another run's directory" in error, error
    assert (other / rundir.ONNX).read_bytes() == before


def test_compare_refuses_a_run_holding_another_runs_onnx_file(backend, run_dir, tmp_path, capsys):
    """RUN_B's model.onnx replaced by another model's: compare reported that file's agreement as RUN_B's."""
    other = another_run(run_dir, tmp_path / "other")
    shutil.copy(run_dir / rundir.ONNX, other / rundir.ONNX)
    assert compare([str(other), str(run_dir), "--no-measure", "--out", str(tmp_path / "report")]) == 2
    error = one_error(capsys, "shared.compare")
    assert f"{other / rundir.ONNX} has" in error or f"{other / rundir.ONNX} does not match" in error, error
    assert not (tmp_path / "report").exists()


def test_a_reexport_over_the_runs_own_onnx_keeps_its_record_true(backend, run_dir, photos, tmp_path, capsys):
    """Re-exporting at opset 9 replaced model.onnx while metrics.json still said 18. Now the record follows the
    file, the file and its sidecar carry the run's id, and the run's files still verify (predict on it works)."""
    import onnx

    from shared.formats import verified

    run = copy_of(run_dir, tmp_path / "run")
    assert export(backend.framework, lambda: backend, [str(run), "--format", "onnx", "--opset", "9"]) == 0
    metrics = json.loads((run / rundir.METRICS).read_text())
    exported = onnx.load(str(run / rundir.ONNX))
    assert metrics["onnx"]["opset"] == 9
    assert metrics["files"][rundir.ONNX] == verified.file_record(run / rundir.ONNX)
    carried = {prop.key: prop.value for prop in exported.metadata_props}
    assert carried["cnnlab.run_id"] == metrics["run_id"] and carried["cnnlab.arch"] == metrics["arch"]
    sidecar = json.loads(sidecar_path(run / rundir.ONNX).read_text())
    assert (sidecar["run_id"], sidecar["opset"], sidecar["sha256"]) == (
        metrics["run_id"], 9, metrics["files"][rundir.ONNX]["sha256"])
    capsys.readouterr()
    assert run_predict(backend, run / rundir.ONNX, photos) == 0


def test_a_reexport_that_cannot_write_the_runs_record_changes_nothing(backend, run_dir, tmp_path, monkeypatch,
                                                                      capsys):
    """The file, its sidecar and the run's record are replaced together or not at all: a disk that fills up as the
    record is written (the last of the three writes) leaves the run's model.onnx, its record and no sidecar."""
    import errno

    import shared.commands.export as export_command

    run = copy_of(run_dir, tmp_path / "run")
    before = {name: (run / name).read_bytes() for name in (rundir.ONNX, rundir.METRICS)}

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export_command.rundir, "write_json", full_disk)
    assert export(backend.framework, lambda: backend, [str(run), "--format", "onnx", "--opset", "17"]) == 2
    assert "No space left on device" in one_error(capsys, f"cnnlab_{backend.framework}.export")
    assert {name: (run / name).read_bytes() for name in before} == before
    assert not sidecar_path(run / rundir.ONNX).exists() and not list(run.glob(".part-*"))


# 3. Flags are checked before any work


@pytest.mark.parametrize("flags, expected", [
    (["--format", "onnx", "--opset", "99"], "argument --opset: ONNX opset 99 is above what both exporters write"),
    (["--format", "onnx", "--opset", "0"], "argument --opset: ONNX opset 0 is below what cnnlab can verify"),
])
def test_export_flags_are_refused_before_the_model_loads(backend, run_dir, flags, expected, capsys):
    with pytest.raises(SystemExit) as refused:
        export(backend.framework, refused_before_loading, [str(run_dir), *flags])
    assert refused.value.code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--threads 0", "--threads -3", "--top 0", "--batch-size 0"])
def test_predict_counts_must_be_positive(backend, run_dir, photos, flag, capsys):
    with pytest.raises(SystemExit) as refused:
        predict(backend.framework, refused_before_loading, [str(run_dir), str(photos), *flag.split()])
    assert refused.value.code == 2
    assert f"argument {flag.split()[0]}: must be a positive whole number" in capsys.readouterr().err


def test_an_export_into_a_read_only_folder_is_refused_before_any_work(backend, run_dir, tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    with read_only(folder):
        assert export(backend.framework, refused_before_loading, [str(run_dir), "--format", "onnx", "--out",
                                                                  str(folder / "model.onnx")]) == 2
    assert f"folder {folder} is not writable" in one_error(capsys, f"cnnlab_{backend.framework}.export")


# 4. Records of the wrong shape


@pytest.mark.parametrize("content, field", [({}, "framework"), ({"classes": None}, "classes")])
def test_a_sidecar_of_the_wrong_shape_is_one_line_naming_its_field(backend, run_dir, photos, tmp_path, content,
                                                                   field, capsys):
    exported = shutil.copy(run_dir / rundir.ONNX, tmp_path / "model.onnx")
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    described = describe("onnx", backend.framework, metrics, run_dir, "test", None, {}, Path(exported))
    write_sidecar(Path(exported), {**described, **content} if content else {})
    assert run_predict(backend, exported, photos) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.predict")
    assert f"{sidecar_path(Path(exported))}: field \"{field}\"" in error, error


@pytest.mark.parametrize("case", ["a list", "no history"])
def test_a_metrics_file_of_the_wrong_shape_is_one_line_in_every_command(backend, run_dir, photos, tmp_path, case,
                                                                         capsys):
    run = copy_of(run_dir, tmp_path / "run")
    metrics = json.loads((run / rundir.METRICS).read_text())
    metrics.pop("history")
    (run / rundir.METRICS).write_text(json.dumps([1, 2, 3] if case == "a list" else metrics))
    expected = "holds a JSON list, not an object" if case == "a list" else "field \"history\" is missing"
    for prog, error in each_command(backend, run, photos, capsys, refused_before_loading):
        assert f"{run / rundir.METRICS}" in error and expected in error, (prog, error)
    assert compare([str(run), str(run_dir), "--no-measure", "--out", str(tmp_path / "report")]) == 2
    assert expected in one_error(capsys, "shared.compare")


@pytest.mark.parametrize("damage, expected", [
    ("split.json a list", "split.json is not a cnnlab run's split: it holds a JSON list"),
    ("data options empty", "field \"data\" is not the data options a run records"),
])
def test_the_run_records_evaluate_reloads_its_data_from_are_validated(backend, run_dir, tmp_path, damage, expected,
                                                                      capsys):
    run = copy_of(run_dir, tmp_path / "run")
    if damage == "split.json a list":
        (run / rundir.SPLIT).write_text("[1, 2, 3]")
    else:
        metrics = json.loads((run / rundir.METRICS).read_text())
        (run / rundir.METRICS).write_text(json.dumps({**metrics, "data": {}}))
    assert evaluate(backend.framework, refused_before_loading, [str(run)]) == 2
    assert expected in one_error(capsys, f"cnnlab_{backend.framework}.evaluate")


def test_a_file_record_of_the_wrong_shape_is_one_line(backend, run_dir, photos, tmp_path, capsys):
    run = copy_of(run_dir, tmp_path / "run")
    metrics = json.loads((run / rundir.METRICS).read_text())
    metrics["files"][backend.checkpoint_name] = {"bytes": 1}
    (run / rundir.METRICS).write_text(json.dumps(metrics))
    assert run_predict(backend, run, photos) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.predict")
    assert f"lists {backend.checkpoint_name} without its size and sha256" in error, error


# 5. Output and signals


def test_a_closed_pipe_ends_predict_quietly(backend, run_dir, tmp_path):
    """``predict ... | head -2`` ended in a BrokenPipeError traceback, for the table and for --json (one each per
    backend, in that backend's command)."""
    from PIL import Image

    many = tmp_path / "many"
    many.mkdir()
    for index in range(1500):  # more output than a pipe's buffer holds
        Image.new("RGB", (4, 4), (index % 255, 0, 0)).save(many / f"{index:04d}-with-a-long-name-for-the-table.png")
    flags = "" if backend.framework == "torch" else "--json"
    shell = (f"{sys.executable} -m cnnlab_{backend.framework}.predict {run_dir / rundir.ONNX} {many} {flags} | head -2 "
             f">/dev/null; exit ${{PIPESTATUS[0]}}")
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=300)
    assert result.returncode == 141 and "Traceback" not in result.stderr, result.stderr
    assert "Error" not in result.stderr, result.stderr


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.is_file() else []


def test_compare_stops_with_its_workers_and_leaves_nothing(backend, run_dir, tmp_path):
    """SIGTERM ended compare with 143 and no message, left its temporary folder and once a worker with no parent;
    Ctrl-C printed a 34-line traceback. Now both are one line, the worker goes with it, and nothing is left
    (SIGTERM while PyTorch's worker runs, SIGINT while Keras's: compare starts the worker of its runs' framework)."""
    stop = signal.SIGTERM if backend.framework == "torch" else signal.SIGINT
    temp = tmp_path / "temp"
    temp.mkdir()
    out = tmp_path / "report"
    process = subprocess.Popen([sys.executable, "-m", "shared.compare", str(run_dir), str(run_dir), "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while not _children(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(process.pid)
    assert workers, "compare started no worker"
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + stop, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert lines == ["shared.compare: stopped: nothing was written"], stderr
    time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]], "a worker outlived compare"
    # compare's own temporary folder (footprint.measure); a library's session file (.ses) may be there too
    assert [path.name for path in temp.iterdir() if path.name.startswith("cnnlab-")] == [] and not out.exists()


# 6. A full disk in compare


def test_compare_on_a_full_disk_leaves_nothing_and_the_retry_works(backend, run_dir, tmp_path, capsys):
    with mounted("tmpfs", tmp_path / "disk", "-t", "tmpfs", "-o", "size=16k", "tmpfs") as disk:
        assert compare([str(run_dir), str(run_dir), "--no-measure", "--out", str(disk / "report")]) == 4
        error = one_error(capsys, "shared.compare")
        assert f"could not write {disk / 'report'}" in error and "nothing of it was left" in error, error
        assert list(disk.iterdir()) == []
    assert compare([str(run_dir), str(run_dir), "--no-measure", "--out", str(disk / "report")]) == 0
    assert sorted(path.name for path in (disk / "report").iterdir()) == ["compare.json", "compare.md", "compare.png"]


# 8. Folders


def test_predict_follows_linked_folders_and_stops_at_a_loop(backend, run_dir, photos, tmp_path, capsys):
    """A folder holding only a link to a folder of photos was refused as "holds no images"; a link back up the
    tree is followed once, named, and ends."""
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "album").symlink_to(photos, target_is_directory=True)
    (linked / "album-again").symlink_to(linked, target_is_directory=True)
    assert run_predict(backend, run_dir / rundir.ONNX, linked, "--json") == 0
    captured = capsys.readouterr()
    predicted = [json.loads(line)["image"] for line in captured.out.splitlines()]
    assert predicted == [str(linked / "album" / f"{index}.png") for index in range(3)], predicted
    assert f"skipping {linked / 'album-again'}: it is {linked.resolve()}, already walked" in captured.err


# 9. Messages that say what was wrong


def test_a_fifo_is_named_as_one(backend, run_dir, photos, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert run_predict(backend, fifo, photos) == 2
    assert f"model {fifo} is a named pipe (FIFO), not a model file" in one_error(capsys,
                                                                                f"cnnlab_{backend.framework}.predict")
    assert run_predict(backend, run_dir / rundir.ONNX, fifo) == 2
    assert f"{fifo} is a named pipe (FIFO), not an image" in one_error(capsys, f"cnnlab_{backend.framework}.predict")


def test_an_onnx_file_of_another_project_is_called_that(backend, photos, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    foreign = tmp_path / "model.onnx"
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(foreign))
    assert run_predict(backend, foreign, photos) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.predict")
    assert f"{foreign} is not a cnnlab export" in error and "cnnlab.classes" in error and "damaged" not in error


def test_a_cnnlab_onnx_file_without_its_sidecar_is_named_and_not_run_unverified(backend, run_dir, photos, tmp_path,
                                                                               capsys):
    """The run's model.onnx copied out alone: its metadata names the run, but nothing holds its checksum."""
    bare = Path(shutil.copy(run_dir / rundir.ONNX, tmp_path / "model.onnx"))
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    assert run_predict(backend, bare, photos) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.predict")
    assert f"{bare} is a cnnlab export (of a {metrics['arch']} run, id {metrics['run_id']}) whose model.onnx.json " \
           f"is missing" in error, error


def test_evaluate_on_data_that_is_gone_names_no_flag_it_lacks(backend, run_dir, tmp_path, capsys):
    run = copy_of(run_dir, tmp_path / "run")
    metrics = json.loads((run / rundir.METRICS).read_text())
    gone = tmp_path / "nowhere" / "cifar-100-python.tar.gz"
    metrics["data"].update(experiment="cifar100-pooling", source=str(gone))
    (run / rundir.METRICS).write_text(json.dumps(metrics))
    assert evaluate(backend.framework, refused_before_loading, [str(run)]) == 2
    error = one_error(capsys, f"cnnlab_{backend.framework}.evaluate")
    assert f"cannot be loaded from {gone}" in error and "--data" not in error, error


def test_a_huge_image_is_one_warning_with_the_bound(backend, run_dir, photos, tmp_path, capsys):
    """A 10000x10000 PNG printed Pillow's raw DecompressionBombWarning and doubled the peak memory."""
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("RGB", (10000, 10000)).save(huge)
    assert run_predict(backend, run_dir / rundir.ONNX, huge, photos) == 1
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line.lower()]
    assert warnings == [f"cnnlab_{backend.framework}.predict: warning: skipping {huge}: 10000x10000 pixels (100 MP) "
                        f"is above the 89 MP bound on an image's size (decoded, it would take 286 MiB, and more "
                        f"while it is resized); shrink it first"], captured.err
    assert len(captured.out.splitlines()) == 1 + 3  # the header and the three photos


def test_a_damaged_keras_checkpoint_is_not_called_missing(tmp_path):
    """Keras answers a .keras file that is not a zip with "File not found"; the file is there, and damaged."""
    from cnnlab_tf.weights import load_checkpoint
    from shared.util.errors import WeightsError

    damaged = tmp_path / "model.keras"
    damaged.write_bytes(b"garbage" * 100)
    with pytest.raises(WeightsError) as error:
        load_checkpoint(None, damaged)
    assert "not a zip archive, which every .keras file is" in str(error.value)
    assert "not found" not in str(error.value), error.value
