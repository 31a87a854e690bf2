"""Every experiment's data names a registered source, and every source serves an experiment."""

from shared.run.experiments import DATA_SOURCES, EXPERIMENTS


def test_every_experiment_s_data_has_a_source():
    assert {experiment.data for experiment in EXPERIMENTS.values()} == set(DATA_SOURCES)
