"""Training data for LAN, CPN and OPN networks, written as resumable shards.

- :mod:`~simulators.training_data.sampling`: θ from a model's box (uniform / Sobol), per-shard seeds
- :mod:`~simulators.training_data.kde`: batched per-response log-RT KDE (grid + FFT)
- :mod:`~simulators.training_data.labels`: LAN rows, CPN and OPN targets
- :mod:`~simulators.training_data.filters`: degenerate-θ filters
- :mod:`~simulators.training_data.shards`, :mod:`~simulators.training_data.manifest`: files
- :mod:`~simulators.training_data.generator`: :class:`GeneratorConfig`, :func:`generate`

The Hydra app is ``python -m simulators.generate`` (docs/training_data.md).

Example
-------
>>> from simulators.training_data import GeneratorConfig
>>> GeneratorConfig(model="ddm", n_parameter_sets=8, n_simulations=1000, n_training_rows=50,
...                 n_shards=2, seed=0, output_dir="out").shard_sizes()
[4, 4]
"""

from simulators.training_data.filters import FILTER_REASONS, FilterPolicy
from simulators.training_data.generator import GeneratorConfig, generate, generate_shard, job_shards
from simulators.training_data.kde import LogRTKDE, silverman_bandwidth
from simulators.training_data.labels import LANRecipe, OPNRecipe, cpn_targets, lan_rows, opn_targets
from simulators.training_data.manifest import (
    ValidationReport,
    merge_manifest,
    read_manifest,
    validate_dataset,
)
from simulators.training_data.sampling import (
    SAMPLERS,
    ParameterSampler,
    resolve_bounds,
    sample_parameters,
    shard_seed,
)
from simulators.training_data.shards import SHARD_ARRAYS, read_shard, verify_shard, write_shard

__all__ = [
    "FILTER_REASONS",
    "SAMPLERS",
    "SHARD_ARRAYS",
    "FilterPolicy",
    "GeneratorConfig",
    "LANRecipe",
    "LogRTKDE",
    "OPNRecipe",
    "ParameterSampler",
    "ValidationReport",
    "cpn_targets",
    "generate",
    "generate_shard",
    "job_shards",
    "lan_rows",
    "merge_manifest",
    "opn_targets",
    "read_manifest",
    "read_shard",
    "resolve_bounds",
    "sample_parameters",
    "shard_seed",
    "silverman_bandwidth",
    "validate_dataset",
    "verify_shard",
    "write_shard",
]
