"""Samplers beyond Pyro's: a NUTS that advances all chains with one batched likelihood call.

* :class:`BatchedPotential` -- ``U(x)`` for ``x`` of shape ``(C, D)`` (one likelihood call
  for all chains, gradients through one backward pass).
* :func:`nuts_sample` -- NUTS (multinomial sampling, generalized no-U-turn criterion,
  Stan's windowed warm-up) vectorized over chains, for any batched potential.
* :func:`run_batched_nuts` -- the same on a :class:`~hssm_torch.builder.ModelBuilder`,
  returning what :func:`hssm_torch.inference.run_nuts` returns
  (``HSSM.sample(sampler="nuts_batched")``).
* :func:`value_and_grad_fn` -- ``x -> (U, dU/dx)`` for a batched potential, eager or
  compiled with ``torch.compile`` as one graph (:func:`fused_value_and_grad`; the
  sampler's ``compile=True`` compiles that graph together with the NUTS leaf update).
"""

from hssm_torch.samplers.adaptation import (
    DualAveraging,
    WelfordVariance,
    mass_windows,
    regularised_variance,
)
from hssm_torch.samplers.batched_nuts import NUTSResult, nuts_sample, run_batched_nuts
from hssm_torch.samplers.compiled import fused_value_and_grad, value_and_grad_fn
from hssm_torch.samplers.potential import BatchedPotential, FlatSite

__all__ = [
    "BatchedPotential",
    "DualAveraging",
    "FlatSite",
    "NUTSResult",
    "WelfordVariance",
    "fused_value_and_grad",
    "mass_windows",
    "nuts_sample",
    "regularised_variance",
    "run_batched_nuts",
    "value_and_grad_fn",
]
