"""Shared test configuration: seeding, markers, reference data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REFERENCE_DIR = Path(
    os.environ.get(
        "HSSMT_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed every backend before each test so results never depend on test order."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (seeds code that still uses the legacy global state)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    yield


@pytest.fixture
def reference_dir() -> Path:
    """The shared reference folder (``../shared/reference``); skips when absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference material not found at {REFERENCE_DIR} (set HSSMT_REFERENCE_DIR)")
    return REFERENCE_DIR


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip_gpu = pytest.mark.skip(reason="needs CUDA; none available")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
