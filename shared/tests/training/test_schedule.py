"""Learning-rate schedules, against values worked out by hand."""

import math

import pytest

from shared.training.schedule import SCHEDULES, extendable, learning_rate


def test_constant_is_the_base_rate_throughout():
    assert {learning_rate("constant", 1e-3, 5, 10, epoch, batch) for epoch in (1, 5) for batch in (1, 10)} == {1e-3}


def test_cosine_starts_at_the_rate_halves_midway_and_ends_near_zero():
    # 4 epochs of 10 steps: step t (0-based) has lr * (1 + cos(pi * t / 40)) / 2
    assert learning_rate("cosine", 1e-3, 4, 10, 1, 1) == 1e-3
    assert learning_rate("cosine", 1e-3, 4, 10, 3, 1) == pytest.approx(0.5e-3, rel=1e-12), "step 20 of 40"
    last = learning_rate("cosine", 1e-3, 4, 10, 4, 10)
    assert last == pytest.approx(1e-3 * (1 + math.cos(math.pi * 39 / 40)) / 2) and 0 < last < 2e-6
    rates = [learning_rate("cosine", 1e-3, 4, 10, epoch, batch) for epoch in range(1, 5) for batch in range(1, 11)]
    assert all(earlier > later for earlier, later in zip(rates, rates[1:])), "strictly decreasing"


def test_only_total_independent_schedules_extend():
    assert extendable("constant") and not extendable("cosine")
    assert set(SCHEDULES) == {"constant", "cosine"}, "a new schedule must say whether it can be extended"


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'; choose from: constant, cosine"):
        learning_rate("step", 1e-3, 1, 1, 1, 1)
