"""The generator's ``workers`` option (``simulators.simulate(..., workers=n)``).

Checked: validation; ``workers`` is not part of the dataset's identity (content config and
fingerprint unchanged); it reaches ``simulate``; a shard generated with ``workers=2`` equals
the ``workers=1`` one array for array (it changes no draw).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from simulators.training_data import GeneratorConfig, generate_shard
from simulators.training_data.manifest import config_fingerprint

BASE = dict(
    model="angle",
    n_parameter_sets=3,
    n_simulations=400,
    n_training_rows=10,
    n_shards=1,
    seed=3,
    output_dir="unused",
    bounds={"a": [0.3, 0.5], "t": [0.001, 0.2]},
    chunk_size=3,
    progress=False,
    simulator_options={"chunk_size": 250},
)


@pytest.mark.parametrize("bad", [0, 1.5, True, "2"])
def test_workers_is_validated(bad):
    with pytest.raises(ValueError, match="workers: expected an integer >= 1"):
        GeneratorConfig(**BASE, workers=bad)


def test_workers_is_a_top_level_key_not_a_simulator_option():
    with pytest.raises(ValueError, match="top-level"):
        GeneratorConfig(**{**BASE, "simulator_options": {"workers": 2}})


def test_workers_is_not_part_of_the_identity():
    one, two = GeneratorConfig(**BASE), GeneratorConfig(**BASE, workers=2)
    assert "workers" not in two.content_config()
    assert one.content_config() == two.content_config()
    assert config_fingerprint(one.content_config()) == config_fingerprint(two.content_config())


def test_workers_reach_simulate_and_change_no_draw(monkeypatch):
    sim_module = sys.modules["simulators.simulate"]
    inner = sim_module._run_chunks
    seen = []

    def recording(run, chunks, workers):
        seen.append((len(chunks), workers))
        return inner(run, chunks, workers)

    one, rec_one = generate_shard(GeneratorConfig(**BASE), 0)
    monkeypatch.setattr(sim_module, "_run_chunks", recording)
    two, rec_two = generate_shard(GeneratorConfig(**BASE, workers=2), 0)
    assert seen and all(w == 2 for _, w in seen)
    assert any(n >= 2 for n, _ in seen)  # 1,200 trials in chunks of <= 250: a real pool
    assert set(one) == set(two)
    for name in one:
        assert np.array_equal(one[name], two[name]), name
    rec_one.pop("seconds"), rec_two.pop("seconds")
    assert rec_one == rec_two
