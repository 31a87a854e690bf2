"""The drawing of a model's layers (``shared.report.layers``): a PNG that names every top-level layer with its
output shape and trainable parameters, for plain and composite specs, and a box text for every layer type."""

from typing import get_args

import pytest

from shared.model.registry import build_spec
from shared.model.shapes import count_trainable, output_shapes, trainable_params_by_layer
from shared.model.specs import Layer
from shared.report.layers import draw_layers, layer_label
from tests.support.layers import SAMPLES, missing_rules


@pytest.mark.parametrize("name, classes, size", [("cifar_cnn_max", 10, 32), ("resnet18", 1000, 224),
                                                 ("mobilenet_v2", 10, 32)])
def test_the_drawing_names_every_top_level_layer_with_its_shape_and_parameters(tmp_path, name, classes, size):
    spec = build_spec(name, classes, size)
    path = tmp_path / "layers.png"
    labels = draw_layers(spec, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 1_000_000, len(data)
    params = trainable_params_by_layer(spec)
    for layer, shape in output_shapes(spec):
        assert layer in labels, f"{layer} is not drawn"
        assert " × ".join(map(str, shape)) in labels, f"{layer}'s shape {shape} is not drawn"
        if params[layer]:
            assert f"{params[layer]:,}" in labels, f"{layer}'s parameters are not drawn"
    assert f"{count_trainable(spec):,}" in labels


def test_every_layer_type_has_a_box_text():
    assert missing_rules("drawing", get_args(Layer)) == []
    for layer, _ in SAMPLES.values():
        kind, detail, _ = layer_label(layer)
        assert kind == type(layer).__name__ and detail
