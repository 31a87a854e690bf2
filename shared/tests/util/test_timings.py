"""The phases of a run's wall time, and the curves drawn at most once a minute, on a clock the test moves."""

import pytest

from shared.report import plots
from shared.util import timings
from shared.util.timings import Timings


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timings.time, "perf_counter", clock)  # the same time module plots reads
    return clock


def test_phases_laps_and_the_rest_add_up_to_the_wall_time(clock):
    run = Timings(started=99.0)  # the process started a second before this clock reading
    with run.phase("import"):
        clock.now += 2.0
    clock.now += 0.5
    run.lap("start_up")  # 1 s before this clock + 0.5 s after the import
    run.add("epochs", 3.0)
    clock.now += 3.25  # the epochs took 3 s of it; 0.25 s is no phase's
    with run.phase("export"):
        clock.now += 0.75
    taken = run.take()
    assert taken == {"import": 2.0, "start_up": 1.5, "epochs": 3.0, "checkpoints": 0.0, "export": 0.75,
                     "reports": 0.0, "other": 0.25, "total": 7.5}
    clock.now += 1.0
    run.lap("start_up")  # a study's next model counts from where the last one was taken
    assert run.take() == {**dict.fromkeys(timings.PHASES, 0.0), "start_up": 1.0, "other": 0.0, "total": 1.0}


def test_an_unknown_phase_is_a_bug():
    with pytest.raises(AssertionError, match="unknown phase"):
        Timings().add("training", 1.0)


def test_curves_are_drawn_at_most_once_a_minute_and_when_asked(clock, monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(plots, "plot_history", lambda history, path, title: drawn.append(len(history)))
    curves = plots.Curves(tmp_path / "curves.png", "title")
    history = []
    for epoch in range(1, 8):  # epochs of 25 s: a drawing after the third (75 s) and the sixth (150 s)
        clock.now += 25.0
        history.append({"epoch": epoch})
        curves.after_epoch(history)
    assert drawn == [3, 6]
    curves.draw(history)  # the run ends: drawn whatever the clock says
    assert drawn == [3, 6, 7]
    curves.draw([])  # stopped before an epoch finished: nothing to draw
    assert drawn == [3, 6, 7]
