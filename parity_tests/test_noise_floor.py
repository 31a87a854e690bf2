"""The 32-true one-epoch tolerance stands on a measured floor: the two frameworks differ after one epoch by about as
much as one framework differs from itself when an initial weight moves by one float32 ulp
(parity_tests/noise_floor.py explains why training has such a floor)."""

import pytest

from parity_tests.noise_floor import measure
from shared.formats.tolerances import tolerance

# The slow half of the parity suite: it trains models (make test ARGS="parity_tests -m 'not training'" skips it)
pytestmark = pytest.mark.training

SEEDS = (0, 1, 2)
SAME_ORDER = 10  # "of the same order": within a factor of ten


@pytest.fixture(scope="module")
def floors():
    return [measure(seed) for seed in SEEDS]


def test_cross_framework_difference_is_of_the_order_of_the_noise_floor(floors):
    for floor in floors:
        print(floor)
        self_drift = max(floor["torch_self"], floor["tf_self"])
        assert self_drift > 0, f"seed {floor['seed']}: no one-ulp nudge changed anything; the measurement is broken"
        assert floor["cross"] <= SAME_ORDER * self_drift, \
            f"seed {floor['seed']}: the frameworks differ by {floor['cross']:.3g}, {SAME_ORDER}x more than a run " \
            f"differs from itself after a one-ulp nudge ({self_drift:.3g}): look for a real divergence"


def test_one_epoch_tolerance_sits_above_the_floor_and_within_its_order(floors):
    for floor in floors:
        bound = tolerance("trained_run") * max(1.0, floor["largest_logit"])
        self_drift = max(floor["torch_self"], floor["tf_self"])
        assert self_drift <= bound, f"seed {floor['seed']}: the floor {self_drift:.3g} exceeds the bound {bound:.3g}"
    largest_floor = max(max(floor["torch_self"], floor["tf_self"]) for floor in floors)
    largest_bound = max(tolerance("trained_run") * max(1.0, floor["largest_logit"]) for floor in floors)
    assert largest_bound <= SAME_ORDER * largest_floor, \
        f"the one-epoch bound {largest_bound:.3g} is over {SAME_ORDER}x the largest measured floor {largest_floor:.3g}"
