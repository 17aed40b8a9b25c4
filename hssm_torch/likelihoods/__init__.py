"""Analytical likelihoods in PyTorch: batched, float32/float64, CPU/CUDA, differentiable.

Every likelihood has the signature ``fn(rt, response, theta, *, validate=False)`` with
``theta`` of shape ``(..., P)`` in registry order; see :mod:`hssm_torch.likelihoods.registry`
for the contract user-supplied callables follow, and docs/likelihoods.md for the formulas.

Example
-------
>>> import torch
>>> from hssm_torch.likelihoods import log_likelihood
>>> th = torch.tensor([1.0, 1.0, 0.5, 0.2], dtype=torch.float64)
>>> log_likelihood("ddm", torch.tensor([0.6, 0.6]), torch.tensor([1, -1]), th).shape
torch.Size([2])
"""

from hssm_torch.likelihoods._common import LOG_FLOOR
from hssm_torch.likelihoods.ddm_extras import (
    ddm_choice_probability,
    ddm_log_choice_probability,
    ddm_log_survival,
)
from hssm_torch.likelihoods.full_ddm import full_ddm_log_likelihood
from hssm_torch.likelihoods.lba import LBA_S, lba_log_likelihood
from hssm_torch.likelihoods.poisson_race import log_gammaincc, poisson_race_log_likelihood
from hssm_torch.likelihoods.racing_diffusion import racing_diffusion_3_log_likelihood
from hssm_torch.likelihoods.registry import (
    LikelihoodFn,
    get_likelihood,
    list_likelihoods,
    log_likelihood,
    register_likelihood,
    unregister_likelihood,
)
from hssm_torch.likelihoods.softmax import make_inv_temp_softmax, make_softmax_inv_temperature
from hssm_torch.likelihoods.wfpt import (
    ddm_log_likelihood,
    ddm_sdv_log_likelihood,
    log_f01,
    log_wfpt_lower,
)

__all__ = [
    "LBA_S",
    "LOG_FLOOR",
    "LikelihoodFn",
    "ddm_choice_probability",
    "ddm_log_choice_probability",
    "ddm_log_likelihood",
    "ddm_log_survival",
    "ddm_sdv_log_likelihood",
    "full_ddm_log_likelihood",
    "get_likelihood",
    "lba_log_likelihood",
    "list_likelihoods",
    "log_f01",
    "log_gammaincc",
    "log_likelihood",
    "log_wfpt_lower",
    "make_inv_temp_softmax",
    "make_softmax_inv_temperature",
    "poisson_race_log_likelihood",
    "racing_diffusion_3_log_likelihood",
    "register_likelihood",
    "unregister_likelihood",
]
