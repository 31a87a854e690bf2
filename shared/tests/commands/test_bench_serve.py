"""The serve benchmark's own parts: wrk's report read as wrk prints it (two real reports, captured from wrk 4 on a
local server), and the built-in client and the server's lifetime against a real uvicorn server (the HTTP ceiling)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.measure import serving

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("report, expected", [
    ("wrk-upload.txt", {"requests_per_second": 5936.02, "p50_ms": 0.615, "p99_ms": 4.2, "errors": 0}),
    ("wrk-404.txt", {"requests_per_second": 13149.49, "p50_ms": 0.132, "p99_ms": 3.38, "errors": 13156}),
])
def test_wrk_figures_are_read_from_its_report(report, expected, monkeypatch, tmp_path):
    text = (DATA / report).read_text()
    monkeypatch.setattr(serving.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(
        args, 0, stdout=text, stderr=""))
    figures = serving.wrk_load(8000, b"body", 4, 1.0, tmp_path)
    assert figures == pytest.approx(expected)


def test_the_builtin_client_measures_a_real_server_which_is_gone_afterwards():
    port = serving.free_port()
    command = [sys.executable, "-m", "shared.serving.ceiling", "--port", str(port)]
    with serving.running_server(command, port) as (process, cold_start):
        figures = serving.asyncio_load(port, serving.png_upload(), 4, 0.3)
        memory = serving.resident_mb(process.pid)
    assert cold_start > 0 and memory > 10
    assert figures["requests"] > 4 and figures["errors"] == 0
    assert figures["p99_ms"] >= figures["p50_ms"] > 0
    assert process.poll() is not None, "the server outlived the block"
