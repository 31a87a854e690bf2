"""predict's framework-free parts: which files it reads, in which order, and the records it returns."""

import json

import numpy as np
import pytest
from PIL import Image

from shared.commands import predict
from shared.util.errors import UsageError


def write_png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)
    return path


def test_a_folder_is_walked_recursively_in_sorted_order_without_hidden_files_or_debris(tmp_path):
    for name in ("b.png", "a.jpg", "sub/c.png", "sub/deeper/d.PNG", ".hidden.png", ".ipynb_checkpoints/e.png",
                 "sub/.cache/f.png"):
        write_png(tmp_path / "photos" / name) if not name.endswith(".jpg") else \
            Image.new("RGB", (4, 4)).save(tmp_path / "photos" / name)
    (tmp_path / "photos" / "notes.txt").write_text("not an image, and not named: ignored")
    found = predict.image_files([tmp_path / "photos"])
    assert [path.relative_to(tmp_path / "photos").as_posix() for path in found] == \
        ["a.jpg", "b.png", "sub/c.png", "sub/deeper/d.PNG"]


def test_files_and_folders_keep_the_order_they_were_given(tmp_path):
    first, second = write_png(tmp_path / "z.png"), write_png(tmp_path / "dir" / "a.png")
    assert predict.image_files([first, tmp_path / "dir"]) == [first, second]


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "notes.txt").write_text("hello") and root / "notes.txt", "is not an image file"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "holds no images"),
    (lambda root: write_png(root / "only" / ".hidden.png").parent, "holds no images"),
    (lambda root: root / "missing.png", "does not exist"),
], ids=["not-an-image", "empty-folder", "only-hidden-files", "missing"])
def test_bad_image_arguments_are_refused_with_one_message(tmp_path, make, message):
    with pytest.raises(UsageError, match=message):
        predict.image_files([make(tmp_path)])


def test_an_unknown_kind_of_model_file_is_refused_before_anything_loads(tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"\x89HDF")
    with pytest.raises(UsageError, match=r"not a model cnnlab can run.*\.onnx.*\.tflite.*\.pte"):
        predict.load_model("torch", lambda: pytest.fail("loaded a backend"), model)


def test_records_hold_the_top_classes_best_first_with_their_softmax_probabilities(tmp_path):
    logits = np.array([[0.0, 2.0, 1.0], [3.0, 3.0, -1.0]])
    records = predict.records(["x.png", "y.png"], logits, ["cat", "dog", "owl"], top=2)
    # by hand: exp(2)/(1+e^2+e) = 0.6652, exp(1)/(...) = 0.2447; ties keep class order
    assert [entry["label"] for entry in records[0]["top"]] == ["dog", "owl"]
    assert records[0]["top"][0]["probability"] == pytest.approx(0.66524, abs=1e-5)
    assert records[0]["top"][1] == {"label": "owl", "index": 2, "probability": pytest.approx(0.24473, abs=1e-5)}
    assert [entry["index"] for entry in records[1]["top"]] == [0, 1]
    assert json.loads(json.dumps(records[1]))["image"] == "y.png"


def test_a_corrupt_image_is_named_and_skipped_and_the_rest_are_decoded(tmp_path, capsys):
    good = write_png(tmp_path / "good.png", 200)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    kept, pixels, skipped = predict.decoded([broken, good], 4, "prog")
    assert kept == [good] and skipped == [broken] and pixels.shape == (1, 4, 4, 3) and pixels.max() == 200
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"skipping {broken}" in err


def test_the_table_shows_each_image_with_its_labels_and_percentages():
    records = [{"image": "a.png", "top": [{"label": "rose", "index": 1, "probability": 0.912},
                                          {"label": "daisy", "index": 0, "probability": 0.05}]}]
    lines = predict.table(records).splitlines()
    assert lines[0].startswith("image") and "rose 91.2%" in lines[1] and "daisy 5.0%" in lines[1]


@pytest.mark.parametrize("name", ["model.tflite", "model.onnx"])
def test_a_damaged_model_file_is_one_message_that_says_to_export_again(tmp_path, name):
    from tests.support.helpers import write_sidecar
    from shared.formats.verified import file_record

    model = tmp_path / name
    model.write_bytes(b"TFL3" + bytes(60))  # a header, then nothing: what a cut-off copy leaves
    # a sidecar that matches the file (so the runtime does open it): the file was cut off before it was described
    write_sidecar(model, {"format": "x", "framework": "tf", "arch": "cifar_cnn_max", "classes": ["cat", "dog"],
                          "image_size": 8, **file_record(model)})
    with pytest.raises(UsageError, match=rf"{name} cannot be read as .* file: .*export it again from its run"):
        predict.load_model("tf", lambda: pytest.fail("loaded a backend"), model)
