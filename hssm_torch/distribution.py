"""The SSM likelihood as a Pyro distribution over ``(rt, response)`` pairs.

:class:`SSMDistribution` has event shape ``(2,)`` (one ``(rt, response)`` row) and batch
shape ``theta.shape[:-1]`` (one parameter row per trial). ``log_prob`` calls the
likelihood once for the whole batch and, with ``p_outlier``, mixes in a lapse density:
``log((1 - p) f(rt, response | theta) + p * lapse(rt))``. ``sample`` draws from
:func:`simulators.simulate` (lapses replaced by draws from the lapse distribution with a
uniformly chosen response).

Example
-------
>>> import torch
>>> from hssm_torch.distribution import SSMDistribution
>>> ll = lambda rt, resp, th: -(rt - th[..., 0]) ** 2
>>> d = SSMDistribution(torch.zeros(3, 1), ll, model="custom", choices=(-1, 1))
>>> d.log_prob(torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.5, 1.0]])).shape
torch.Size([3])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pyro.distributions as pdist
import torch
from pyro.distributions import constraints

__all__ = ["SSMDistribution"]

LogLik = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class SSMDistribution(pdist.TorchDistribution):
    """Likelihood of ``(rt, response)`` rows given per-row parameters.

    Parameters
    ----------
    theta : torch.Tensor
        ``(..., P)`` parameters in registry order (one row per trial).
    loglik : callable
        ``loglik(rt, response, theta) -> log p`` over batched tensors.
    model : str
        Registry name, used by :meth:`sample` to call the simulators.
    choices : sequence of int
        Response codes (lapse responses are drawn uniformly from them).
    p_outlier : torch.Tensor, optional
        Lapse probability, broadcastable to the batch shape.
    lapse : pyro distribution, optional
        Lapse density over rt (default ``Uniform(0, 20)``, as HSSM).
    """

    arg_constraints = {"theta": constraints.real}
    support = constraints.real_vector
    has_rsample = False

    def __init__(
        self,
        theta: torch.Tensor,
        loglik: LogLik,
        *,
        model: str = "ddm",
        choices: Sequence[int] = (-1, 1),
        p_outlier: torch.Tensor | None = None,
        lapse: pdist.Distribution | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if theta.dim() < 1:
            raise ValueError(f"theta: expected shape (..., P), got {tuple(theta.shape)}")
        self.theta = theta
        self.loglik = loglik
        self.model = model
        self.choices = tuple(int(c) for c in choices)
        self.p_outlier = p_outlier
        if p_outlier is not None and lapse is None:
            lapse = pdist.Uniform(
                torch.zeros((), dtype=theta.dtype, device=theta.device),
                torch.full((), 20.0, dtype=theta.dtype, device=theta.device),
            )
        self.lapse = lapse
        super().__init__(theta.shape[:-1], torch.Size([2]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        theta = self.theta.expand(shape + self.theta.shape[-1:])
        p = None if self.p_outlier is None else self.p_outlier.expand(shape)
        return SSMDistribution(
            theta,
            self.loglik,
            model=self.model,
            choices=self.choices,
            p_outlier=p,
            lapse=self.lapse,
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of rows ``value[..., 0] = rt``, ``value[..., 1] = response``."""
        rt, response = value[..., 0], value[..., 1]
        ll = self.loglik(rt, response, self.theta)
        if self.p_outlier is None:
            return ll
        p = self.p_outlier
        # The lapse picks its response uniformly (as ``sample`` does), so its density over
        # (rt, response) is lapse(rt) / n_choices: the mixture then integrates to one. HSSM
        # leaves out the 1 / n_choices; p_outlier estimates here match the simulated rate.
        # Outside the lapse range the lapse density is zero (no error for slow trials).
        inside = self.lapse.support.check(rt)
        safe_rt = torch.where(inside, rt, self.lapse.mean.to(rt).expand_as(rt))
        lapse_lp = torch.where(
            inside,
            self.lapse.log_prob(safe_rt) - math.log(len(self.choices)),
            torch.full_like(rt, -math.inf),
        )
        return torch.logaddexp(torch.log1p(-p) + ll, torch.log(p) + lapse_lp)

    def sample(self, sample_shape=()) -> torch.Tensor:
        """Simulate ``(rt, response)`` rows with :func:`simulators.simulate`."""
        from simulators.simulate import simulate

        sample_shape = torch.Size(sample_shape)
        n = int(torch.Size(sample_shape).numel())
        flat = self.theta.detach().reshape(-1, self.theta.shape[-1])
        seed = int(torch.randint(0, 2**62, (1,)).item())  # follows torch's global seed
        res = simulate(self.model, flat, n, seed=seed, dtype=flat.dtype)
        rt = torch.as_tensor(res.rt).to(flat).transpose(0, 1)  # (n, B)
        resp = torch.as_tensor(res.response).to(flat).transpose(0, 1)
        if self.p_outlier is not None:
            p = self.p_outlier.detach().expand(self.batch_shape).reshape(-1)
            is_lapse = torch.rand(rt.shape, device=rt.device, dtype=rt.dtype) < p
            lapse_rt = self.lapse.sample(rt.shape).to(rt)
            codes = torch.tensor(self.choices, dtype=rt.dtype, device=rt.device)
            lapse_resp = codes[torch.randint(len(codes), rt.shape, device=rt.device)]
            rt = torch.where(is_lapse, lapse_rt, rt)
            resp = torch.where(is_lapse, lapse_resp, resp)
        out = torch.stack([rt, resp], dim=-1)  # (n, B, 2)
        return out.reshape(sample_shape + self.batch_shape + (2,))
