"""Fixtures of the shared package's tests."""

import pytest


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """cnnlab's and Keras's caches inside tmp_path, empty: nothing is read from or written to the real home."""
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "cnnlab-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    return tmp_path / "cnnlab-home"
