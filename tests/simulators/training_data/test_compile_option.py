"""The generator's ``compile`` option (``simulators.simulate(..., compile=True)``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from simulators import engine
from simulators.training_data import GeneratorConfig, generate_shard
from simulators.training_data.manifest import config_fingerprint

BASE = dict(
    model="angle",
    n_parameter_sets=2,
    n_simulations=300,
    n_training_rows=10,
    n_shards=1,
    seed=3,
    output_dir="unused",
    bounds={"a": [0.3, 0.5], "t": [0.001, 0.2]},
    chunk_size=2,
    progress=False,
    simulator_options={"method": "euler"},
)


def test_compile_is_validated_and_part_of_the_identity_only_when_set():
    off = GeneratorConfig(**BASE)
    on = GeneratorConfig(**BASE, compile=True)
    assert "compile" not in off.content_config()  # older datasets keep their fingerprint
    assert on.content_config()["compile"] is True
    assert config_fingerprint(off.content_config()) != config_fingerprint(on.content_config())
    with pytest.raises(ValueError, match="compile"):
        GeneratorConfig(**BASE, compile="yes")
    with pytest.raises(ValueError, match="top-level"):
        GeneratorConfig(**{**BASE, "simulator_options": {"compile": True}})


def test_compile_reaches_the_simulator(monkeypatch, caplog):
    """With compile=True the engine is asked for compiled blocks (here torch.compile fails,
    so it warns and the shard equals the eager one: the option is wired, the data sound)."""
    monkeypatch.setattr(engine, "_COMPILED", {})

    def failing(*args, **kwargs):
        raise RuntimeError("no compiler (test)")

    monkeypatch.setattr(torch, "compile", failing)
    eager, _ = generate_shard(GeneratorConfig(**BASE), 0)
    assert not engine._COMPILED
    with caplog.at_level(logging.WARNING, logger="simulators.engine"):
        comp, _ = generate_shard(GeneratorConfig(**BASE, compile=True), 0)
    assert any("torch.compile failed" in r.getMessage() for r in caplog.records)
    assert engine._COMPILED  # compiled blocks were requested
    for k in eager:
        np.testing.assert_array_equal(eager[k], comp[k], err_msg=k)
