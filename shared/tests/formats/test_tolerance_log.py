"""Every tolerance check can be logged and summarised per row, to re-measure the table on another stack."""

import numpy as np

from shared.formats import tolerance_log
from shared.formats.tolerances import compare, tolerance


def test_each_check_is_logged_relative_to_its_scale_and_summarised_per_row(tmp_path, monkeypatch):
    log = tmp_path / "tolerances.jsonl"
    monkeypatch.setenv(tolerance_log.LOG, str(log))
    compare(np.full(3, 4.0 + 8e-6), np.full(3, 4.0), "same_weights")  # 2e-6 of a scale of 4: within 1e-5
    compare(np.full(3, 0.5 + 3e-7), np.full(3, 0.5), "same_weights")  # scale 1 (outputs below one)
    compare(np.full(3, 5.0), np.full(3, 4.0), "same_weights")  # a planted bug: outside
    compare(np.zeros(2), np.zeros(2), "distributed", "64-true")
    rows = tolerance_log.summary(log.read_text().splitlines()).splitlines()
    assert len(rows) == 3  # a header, then one line per (kind, precision)
    kind, precision, checks, largest, bound, outside = rows[2].split()
    assert (kind, precision, int(checks)) == ("same_weights", "32-true", 3)
    assert np.isclose(float(largest), 2e-6, rtol=1e-2) and float(bound) == tolerance("same_weights")
    assert outside == "shared/tests/formats/test_tolerance_log.py::" \
                      "test_each_check_is_logged_relative_to_its_scale_and_summarised_per_row"
    assert rows[1].split()[:3] == ["distributed", "64-true", "1"]


def test_nothing_is_written_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(tolerance_log.LOG, raising=False)
    monkeypatch.chdir(tmp_path)
    compare(np.zeros(2), np.zeros(2), "same_weights")
    assert list(tmp_path.iterdir()) == []
