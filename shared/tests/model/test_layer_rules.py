"""Every layer type in the ``Layer`` union has a rule in each framework-neutral place that dispatches on the type
(shapes, parameters, FLOPs, initial weights), and a type outside it fails loudly there, naming the type and the
place (the backends check their own places in their test_model.py)."""

from typing import get_args

import numpy as np
import pytest

from shared.model.flops import leaf_flops
from shared.model.init import draw
from shared.model.rules import PLACES
from shared.model.shapes import ParamInfo, layer_output_shape, layer_parameters, parameters
from shared.model.specs import Layer, ModelSpec
from tests.support.layers import SAMPLES, Dropout, missing_rules

SHARED_PLACES = ("shape", "parameters", "FLOPs", "init")


def test_the_samples_cover_the_whole_union():
    assert set(SAMPLES) == set(get_args(Layer)), "add the new layer type to tests/support/layers.py SAMPLES"


def _with_parameters(kind: type) -> bool:
    layer, _ = SAMPLES[kind]
    return bool(parameters(ModelSpec(name="one", layers=(("one", layer),), image_size=8, classes=1)))


@pytest.mark.parametrize("place", SHARED_PLACES)
def test_every_place_has_a_rule_for_every_type(place):
    # initial weights are drawn for parameters only, so only the types that have them need an init rule
    types = tuple(filter(_with_parameters, get_args(Layer))) if place == "init" else get_args(Layer)
    assert missing_rules(place, types) == []


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_each_layer_type_has_a_shape_a_parameter_and_a_flops_rule(kind):
    layer, shape = SAMPLES[kind]
    assert all(size > 0 for size in layer_output_shape(layer, shape))
    spec = ModelSpec(name="one", layers=(("one", layer),), image_size=8, classes=1)
    assert all(param.name.startswith("one.") for param in parameters(spec))


@pytest.mark.parametrize("place, rule", [
    ("shape", lambda: layer_output_shape(Dropout(), (3, 8, 8))),
    ("FLOPs", lambda: leaf_flops(Dropout(), (3, 8, 8))),
    ("parameters", lambda: layer_parameters(Dropout(), "drop")),
    ("parameters", lambda: parameters(ModelSpec("one", (("drop", Dropout()),), 8, 1))),
    ("init", lambda: draw(Dropout(), ParamInfo("drop.weight", (1,), True, Dropout()), np.random.default_rng(0))),
])
def test_a_type_outside_the_union_is_refused_naming_the_type_and_the_place(place, rule):
    assert place in PLACES
    with pytest.raises(TypeError, match=f"no {place} rule for layer type Dropout"):
        rule()
