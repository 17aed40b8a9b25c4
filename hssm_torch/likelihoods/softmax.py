"""Choice-only softmax models (response times are ignored).

- ``softmax_inv_temperature_2`` / ``_3`` (HSSM 0.5): parameters ``beta, logit1[, logit2]``; the
  first option's logit is fixed at 0 and ``P(option k) = softmax(beta * [0, logit1, ...])_k``.
  Two-choice responses are ``-1`` (first option) and ``1`` (second); three-choice ``0, 1, 2``.
- ``inv_temp_softmax_2`` / ``_3`` (ssm-simulators): parameters ``beta, q0, q1[, q2]``,
  ``P(option k) = softmax(beta * q)_k``, responses ``0 .. n-1``.
"""

from __future__ import annotations

import math

import torch

from hssm_torch.likelihoods._common import Support, apply_support, as_inputs

__all__ = ["make_inv_temp_softmax", "make_softmax_inv_temperature", "softmax_choice_log_prob"]


def softmax_choice_log_prob(
    values: torch.Tensor, beta: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    """``log softmax(beta * values)[index]`` over the last dimension of ``values``.

    Example
    -------
    >>> import torch
    >>> v = torch.tensor([0.0, 0.0])
    >>> round(float(softmax_choice_log_prob(v, torch.tensor(1.0), torch.tensor(1)).exp()), 6)
    0.5
    """
    scaled = beta[..., None] * values
    lp = scaled - torch.logsumexp(scaled, dim=-1, keepdim=True)
    return lp.gather(-1, index[..., None]).squeeze(-1)


def _make(name: str, n: int, names: tuple[str, ...], fixed_zero: bool, choices: tuple[int, ...]):
    supports = (Support("beta", 0.0, lo_closed=True),) + tuple(Support(p) for p in names[1:])

    def fn(
        rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
    ) -> torch.Tensor:
        rt, response, theta = as_inputs(rt, response, theta, len(names), name)
        index = torch.full(response.shape, -1, dtype=torch.long, device=theta.device)
        for k, c in enumerate(choices):
            index = torch.where(response == c, torch.full_like(index, k), index)
        known = index >= 0
        if validate and not bool(known.all()):
            raise ValueError(
                f"model {name!r}: response must be one of {list(choices)}, "
                f"got {response[~known][:5].tolist()}"
            )
        beta = theta[..., 0]
        values = theta[..., 1:]
        if fixed_zero:
            values = torch.cat([torch.zeros_like(values[..., :1]), values], dim=-1)
        inside = torch.ones_like(beta, dtype=torch.bool)
        for j, sup in enumerate(supports):
            inside = inside & sup.inside(theta[..., j])
        values = torch.where(inside[..., None], values, torch.zeros_like(values))
        beta_s = torch.where(inside, beta, torch.ones_like(beta))
        lp = softmax_choice_log_prob(values, beta_s, index.clamp_min(0))
        lp = torch.where(known, lp, torch.full_like(lp, -math.inf))
        return apply_support(lp, theta, supports, name, validate)

    fn.__name__ = f"{name}_log_likelihood"
    fn.__doc__ = (
        f"Log-probability of the choice under {name} (theta: {', '.join(names)}; responses "
        f"{list(choices)}; rt ignored). Unknown responses give -inf (ValueError under validate)."
    )
    return fn


def make_softmax_inv_temperature(n_choices: int):
    """HSSM's ``softmax_inv_temperature_{n}`` likelihood (first logit fixed at 0).

    Example
    -------
    >>> import torch
    >>> fn = make_softmax_inv_temperature(2)
    >>> th = torch.tensor([1.0, 0.0])
    >>> round(float(fn(torch.tensor(0.5), torch.tensor(-1), th).exp()), 6)
    0.5
    """
    n = int(n_choices)
    names = ("beta",) + tuple(f"logit{i}" for i in range(1, n))
    choices = (-1, 1) if n == 2 else tuple(range(n))
    return _make(f"softmax_inv_temperature_{n}", n, names, True, choices)


def make_inv_temp_softmax(n_choices: int):
    """ssm-simulators' ``inv_temp_softmax_{n}`` likelihood (values ``q0 .. q{n-1}``).

    Example
    -------
    >>> import torch
    >>> fn = make_inv_temp_softmax(3)
    >>> th = torch.tensor([2.0, 0.1, 0.1, 0.1])
    >>> round(float(fn(torch.tensor(0.5), torch.tensor(2), th).exp()), 6)
    0.333333
    """
    n = int(n_choices)
    names = ("beta",) + tuple(f"q{i}" for i in range(n))
    return _make(f"inv_temp_softmax_{n}", n, names, False, tuple(range(n)))
