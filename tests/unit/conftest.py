"""Fixtures of the fast lane (`pytest tests/unit`); the shared ones are in tests/conftest.py."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread for the tiny model: its ops are too small to gain from more, and on a busy
    2-core machine two threads per process spin against each other (measured: test_scoring.py and
    test_correction.py took 100-117 s with 2 threads, 27-36 s with 1, beside a running benchmark)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
