"""Every layer type in the ``Layer`` union has a rule in each framework-neutral place that dispatches on the type
(shapes, parameters, FLOPs), and a type outside it fails loudly there (the backends check their own builders)."""

from typing import get_args

import pytest

from shared.model.flops import _layer_flops
from shared.model.shapes import layer_output_shape, parameters
from shared.model.specs import Layer, ModelSpec
from tests.support.layers import SAMPLES, Dropout


def test_the_samples_cover_the_whole_union():
    assert set(SAMPLES) == set(get_args(Layer)), "add the new layer type to tests/support/layers.py SAMPLES"


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_each_layer_type_has_a_shape_a_parameter_and_a_flops_rule(kind):
    layer, shape = SAMPLES[kind]
    assert all(size > 0 for size in layer_output_shape(layer, shape))
    assert _layer_flops(layer, shape) >= 0
    spec = ModelSpec(name="one", layers=(("one", layer),), image_size=8, classes=1)
    assert all(param.name.startswith("one.") for param in parameters(spec))


@pytest.mark.parametrize("rule", [lambda: layer_output_shape(Dropout(), (3, 8, 8)),
                                  lambda: _layer_flops(Dropout(), (3, 8, 8)),
                                  lambda: parameters(ModelSpec("one", (("drop", Dropout()),), 8, 1))],
                         ids=["shape", "flops", "parameters"])
def test_a_type_outside_the_union_is_refused_everywhere(rule):
    with pytest.raises(TypeError, match="Dropout"):
        rule()
