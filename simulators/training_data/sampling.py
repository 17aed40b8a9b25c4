"""Parameter sets θ drawn from a model's training box, one seed stream per shard.

Every shard ``i`` of a dataset with seed ``s`` draws from its own stream, derived from
``(s, i)`` with :class:`numpy.random.SeedSequence` (``spawn_key=(i,)``), so shards written by
different jobs never share draws and a shard's content depends only on ``(config, i)``.

Example
-------
>>> from simulators.training_data.sampling import resolve_bounds, sample_parameters, shard_seed
>>> lo, hi = resolve_bounds("ddm", {"v": [-1.0, 1.0]})
>>> theta = sample_parameters(lo, hi, 4, seed=shard_seed(0, 3), method="sobol")
>>> tuple(theta.shape)
(4, 4)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from simulators.registry import ModelSpec, get_model

__all__ = ["SAMPLERS", "ParameterSampler", "resolve_bounds", "sample_parameters", "shard_seed"]

#: Names of the supported θ samplers.
SAMPLERS = ("sobol", "uniform")


def shard_seed(seed: int, shard_index: int, stream: int = 0) -> int:
    """A 63-bit seed for ``stream`` of shard ``shard_index`` of a dataset seeded with ``seed``.

    Derived with ``numpy.random.SeedSequence(seed, spawn_key=(shard_index, stream))``, so
    different ``(seed, shard_index, stream)`` triples give statistically independent streams.

    Example
    -------
    >>> shard_seed(0, 0) != shard_seed(0, 1)
    True
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if shard_index < 0:
        raise ValueError(f"shard_index: expected a non-negative integer, got {shard_index!r}")
    state = np.random.SeedSequence(int(seed), spawn_key=(int(shard_index), int(stream)))
    return int(state.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def resolve_bounds(
    model: str | ModelSpec, bounds: Mapping[str, Sequence[float]] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampling box ``(lower, upper)`` (float64 tensors in registry order).

    ``bounds`` may narrow some parameters' boxes (``{"v": [-2, 2]}``); a box wider than the
    registry's training box, an unknown name or ``lower >= upper`` raises ``ValueError``.

    Example
    -------
    >>> lo, hi = resolve_bounds("ddm", {"a": (0.5, 2.0)})
    >>> lo.tolist(), hi.tolist()
    ([-3.0, 0.5, 0.1, 0.0], [3.0, 2.0, 0.9, 2.0])
    """
    spec = get_model(model)
    lower = [p.lower for p in spec.params]
    upper = [p.upper for p in spec.params]
    for name, box in dict(bounds or {}).items():
        if name not in spec.param_names:
            raise ValueError(
                f"bounds: model {spec.name!r} has no parameter {name!r}; expected names from "
                f"{list(spec.param_names)}"
            )
        try:
            lo, hi = (float(x) for x in box)
        except (TypeError, ValueError):
            raise ValueError(
                f"bounds[{name!r}]: expected a pair [lower, upper], got {box!r}"
            ) from None
        p = spec.param(name)
        if not lo < hi:
            raise ValueError(f"bounds[{name!r}]: expected lower < upper, got [{lo}, {hi}]")
        if lo < p.lower or hi > p.upper:
            raise ValueError(
                f"bounds[{name!r}]: [{lo}, {hi}] is outside model {spec.name!r}'s training box "
                f"[{p.lower}, {p.upper}]; user bounds may only narrow it"
            )
        i = spec.index(name)
        lower[i], upper[i] = lo, hi
    return torch.tensor(lower, dtype=torch.float64), torch.tensor(upper, dtype=torch.float64)


class ParameterSampler:
    """A stream of θ in a box: i.i.d. uniform or scrambled Sobol.

    Successive :meth:`draw` calls continue the same stream (for Sobol: the same scrambled
    sequence), so replacements for rejected θ come from the shard's own stream.

    Parameters
    ----------
    lower, upper:
        The box, 1-D tensors of length P.
    seed:
        Seed of the stream (e.g. :func:`shard_seed`).
    method:
        ``"uniform"`` (default) or ``"sobol"`` (``torch.quasirandom.SobolEngine`` with
        scrambling seeded by ``seed``).

    Example
    -------
    >>> s = ParameterSampler(torch.zeros(2), torch.ones(2), seed=1, method="uniform")
    >>> s.draw(3).shape
    torch.Size([3, 2])
    """

    def __init__(
        self, lower: torch.Tensor, upper: torch.Tensor, seed: int, method: str = "uniform"
    ) -> None:
        if method not in SAMPLERS:
            raise ValueError(f"sampler: expected one of {list(SAMPLERS)}, got {method!r}")
        self.lower = torch.as_tensor(lower, dtype=torch.float64)
        self.upper = torch.as_tensor(upper, dtype=torch.float64)
        self.method = method
        dim = self.lower.numel()
        if method == "sobol":
            self._engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=int(seed) % 2**62)
        else:
            self._gen = torch.Generator().manual_seed(int(seed))

    def draw(self, n: int) -> torch.Tensor:
        """The next ``n`` parameter sets, shape ``(n, P)`` float64 on the CPU."""
        if self.method == "sobol":
            u = self._engine.draw(n, dtype=torch.float64)
        else:
            u = torch.rand(n, self.lower.numel(), generator=self._gen, dtype=torch.float64)
        return self.lower + u * (self.upper - self.lower)


def sample_parameters(
    lower: torch.Tensor, upper: torch.Tensor, n: int, *, seed: int, method: str = "uniform"
) -> torch.Tensor:
    """``n`` parameter sets from the box ``[lower, upper]`` (shape ``(n, P)``, float64).

    Example
    -------
    >>> sample_parameters(torch.zeros(1), torch.ones(1), 2, seed=0).shape
    torch.Size([2, 1])
    """
    return ParameterSampler(lower, upper, seed, method).draw(n)
