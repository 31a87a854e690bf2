"""``python -m cnnlab_<backend>.export RUN --format ...``, run in this process through ``shared.commands.export.main``
as the two entry points call it: a request the framework cannot serve is refused before the backend loads, a file
that fails its self-check leaves nothing behind (an older file of the same name survives), and a file that passes
is written with its sidecar. Each backend exports a one-epoch digits run of its own."""

import importlib
import json
import shutil

import pytest

from cnnlab_torch.runtime import mobile_runner
from shared.commands.export import main as export
from shared.formats import rundir
from shared.formats.exported import sidecar_path
from shared.formats.runtimes import FORMATS, open_runner
from shared.formats.tolerances import INT8_MAX_ACCURACY_DROP, INT8_MIN_AGREEMENT
from shared.training.backend import Exporter
from tests.support.helpers import phone_format, overriding, default_run

# What each entry point passes as ``runners`` (cnnlab_torch/export.py, cnnlab_tf/export.py)
RUNNERS = {"torch": {"executorch": mobile_runner}, "tf": None}


@pytest.fixture(scope="module")
def run_dir(backend, tmp_path_factory):
    """A finished one-epoch run of the default experiment (cifar_cnn_max on the digits), about 1 s to train."""
    return default_run(backend, tmp_path_factory.mktemp("run") / "run", epochs=1)


def run_export(framework: str, load_backend, *argv) -> int:
    return export(framework, load_backend, [str(arg) for arg in argv], runners=RUNNERS[framework])


def refused_before_loading():
    raise AssertionError("the request should be refused before the backend loads")


def error_line(stderr: str, framework: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith(f"cnnlab_{framework}.export: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_format_the_other_framework_writes_is_refused_with_its_command(backend, run_dir, tmp_path, capsys):
    framework = backend.framework
    (refused, format_), = [(name, format_) for name, format_ in FORMATS.items() if framework not in format_.owners]
    other = format_.owners[0]
    flags = ["--format", refused, *(["--quantize", "dynamic-int8"] if refused == "litert" else [])]
    out = tmp_path / f"model{format_.suffix}"
    assert run_export(framework, refused_before_loading, run_dir, *flags, "--out", out) == 2
    error = error_line(capsys.readouterr().err, framework)
    assert f"run python -m cnnlab_{other}.export {run_dir} {' '.join(flags)} (it exports" in error, error
    assert not out.exists()


def test_quantize_is_refused_for_every_format_but_litert(backend, run_dir, tmp_path, capsys):
    framework = backend.framework
    for name in [name for name, format_ in FORMATS.items() if framework in format_.owners and name != "litert"]:
        out = tmp_path / f"model{FORMATS[name].suffix}"
        assert run_export(framework, refused_before_loading, run_dir, "--format", name, "--quantize",
                          "dynamic-int8", "--out", out) == 2, name
        error = error_line(capsys.readouterr().err, framework)
        assert f"--quantize is for --format litert; {FORMATS[name].title} files are exported in float32" in error
        assert not out.exists(), name


def test_opset_is_refused_for_the_mobile_format(backend, run_dir, tmp_path, capsys):
    framework, name = backend.framework, phone_format(backend)
    out = tmp_path / f"model{FORMATS[name].suffix}"
    assert run_export(framework, refused_before_loading, run_dir, "--format", name, "--opset", "17", "--out",
                      out) == 2
    assert f"--opset is for --format onnx, not {name}" in error_line(capsys.readouterr().err, framework)
    assert not out.exists()


def test_an_unfinished_run_is_refused(backend, run_dir, tmp_path, capsys):
    """An interrupted run, as Ctrl-C leaves it (status "interrupted"), is not exported: its last epoch may be
    resumed."""
    unfinished = shutil.copytree(run_dir, tmp_path / "run")
    metrics = json.loads((unfinished / rundir.METRICS).read_text())
    (unfinished / rundir.METRICS).write_text(json.dumps({**metrics, "status": "interrupted"}))
    before = sorted(path.name for path in unfinished.iterdir())
    assert run_export(backend.framework, refused_before_loading, unfinished, "--format", phone_format(backend)) == 2
    error = error_line(capsys.readouterr().err, backend.framework)
    assert "is interrupted, not complete: continue it with --resume; export a finished run" in error, error
    assert sorted(path.name for path in unfinished.iterdir()) == before, "the refusal wrote a file"


def test_a_file_that_fails_its_check_leaves_nothing_and_keeps_the_older_file(backend, run_dir, tmp_path, capsys):
    """The exporter is given a model of fresh weights in place of the trained one: a well-formed file whose
    logits are wrong. The command removes it and exits 1; the file and sidecar of an earlier export stay."""
    mobile = phone_format(backend)

    def export_another_model(model, spec, path, options):
        return backend.exporters[mobile].write(backend.build_model(spec), spec, path, options)

    wrong = overriding(backend, exporters={**backend.exporters, mobile: Exporter(mobile, export_another_model)})
    out = tmp_path / f"model{FORMATS[phone_format(backend)].suffix}"
    out.write_bytes(b"an earlier export")
    sidecar_path(out).write_text('{"an earlier": "sidecar"}')
    assert run_export(backend.framework, lambda: wrong, run_dir, "--format", phone_format(backend), "--out", out) == 1
    error = error_line(capsys.readouterr().err, backend.framework)
    assert "logits differ from the native model by" in error and "nothing was written" in error, error
    assert out.read_bytes() == b"an earlier export", "the earlier file was replaced by one that failed"
    assert sidecar_path(out).read_text() == '{"an earlier": "sidecar"}'
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([out.name, sidecar_path(out).name]), \
        "a temporary file was left behind"


@pytest.mark.parametrize("kind", ["onnx", "mobile"])
def test_a_file_that_passes_is_written_with_its_sidecar(kind, backend, run_dir, tmp_path, capsys):
    name = phone_format(backend) if kind == "mobile" else kind
    format_ = FORMATS[name]
    out = tmp_path / f"digits{format_.suffix}"
    assert run_export(backend.framework, lambda: backend, run_dir, "--format", name, "--out", out) == 0
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    description = json.loads(sidecar_path(out).read_text())
    assert (description["format"], description["framework"], description["arch"], description["quantize"]) == \
        (name, backend.framework, "cifar_cnn_max", None), description
    assert description["classes"] == [str(digit) for digit in range(10)] == metrics["classes"]
    assert description["image_size"] == 32 == metrics["image_size"]
    check = description["check"]
    assert check["checked_images"] == metrics["val_images"] == 359, "every validation image of the digits"
    assert check["max_abs_diff"] <= check["bound"], check
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"{out}: {format_.title}, "), stdout
    assert f"max |Δlogit| {check['max_abs_diff']:.2g} (bound {check['bound']:.2g})" in stdout, stdout
    runner = open_runner(out, 1, RUNNERS["torch"])
    assert (runner.image_size, runner.classes) == (32, 10), "the file's own input and output shapes"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([out.name, sidecar_path(out).name])


def test_int8_litert_keeps_the_float_models_answers(backend, run_dir, tmp_path, capsys):
    """Keras's command exports a run of either framework. Int8 is checked here, on a trained model and the run's
    validation images, where keeping the float model's predictions means something (the parity suite's random
    networks give near-ties; see parity_tests/test_mobile_exports.py). Written under its default name."""
    copy = shutil.copytree(run_dir, tmp_path / "run")
    keras_backend = importlib.import_module("cnnlab_tf.backend").BACKEND
    assert run_export("tf", lambda: keras_backend, copy, "--format", "litert", "--quantize", "dynamic-int8") == 0
    out = copy / "model-int8.tflite"
    check = json.loads(sidecar_path(out).read_text())["check"]
    assert check["predictions_equal"] >= INT8_MIN_AGREEMENT, check
    assert check["accuracy_native"] - check["accuracy_file"] <= INT8_MAX_ACCURACY_DROP, check
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"{out}: LiteRT (TensorFlow Lite) dynamic-int8, "), stdout
    assert (f"accuracy {100 * check['accuracy_native']:.2f}% -> {100 * check['accuracy_file']:.2f}% (at most 2 "
            f"points lower)") in stdout, stdout
