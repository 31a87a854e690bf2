"""Helpers the test suites share: tiny datasets in the real formats, run-directory checks, interrupting backends."""
