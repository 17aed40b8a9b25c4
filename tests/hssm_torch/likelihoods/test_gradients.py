"""Gradients against finite differences, and no NaN/inf over dense random sweeps."""

from __future__ import annotations

import math

import pytest
import torch

from hssm_torch.likelihoods import LOG_FLOOR, ddm_log_survival, get_likelihood, log_likelihood

# (model, theta rows, rt) for gradcheck in float64; theta in registry order.
GRAD_CASES = {
    "ddm": (
        [[0.8, 0.9, 0.4, 0.2], [-2.5, 0.35, 0.9, 0.1], [3.0, 2.0, 0.05, 0.5]],
        [0.5, 0.25, 3.0],
    ),
    "ddm_sdv": ([[0.8, 0.9, 0.4, 0.2, 0.7], [-2.5, 0.35, 0.9, 0.1, 1.4]], [0.5, 2.0]),
    "full_ddm": (
        [[0.8, 0.9, 0.4, 0.4, 0.1, 0.7, 0.2], [-1.5, 1.4, 0.6, 0.5, 0.15, 1.0, 0.1]],
        [0.45, 1.2],
    ),
    "lba2": ([[0.3, 0.6, 0.8, 0.5, 0.1], [0.5, 0.9, 0.2, 0.05, 0.05]], [0.7, 1.5]),
    "lba3": ([[0.3, 0.6, 0.8, 0.5, 0.4, 0.1]], [0.9]),
    "racing_diffusion_3": (
        [[0.5, 1.5, 1.0, 1.5, 0.8, 0.2], [0.1, 0.7, 2.0, 0.3, 0.6, 0.05]],
        [1.0, 0.6],
    ),
    "poisson_race": ([[3.0, 4.0, 2.0, 3.0, 0.2], [10.0, 1.5, 0.7, 5.5, 0.05]], [0.9, 0.4]),
    "softmax_inv_temperature_3": ([[1.5, 0.3, -0.4]], [0.0]),
    "inv_temp_softmax_2": ([[2.0, 0.1, 0.7]], [0.0]),
}


@pytest.mark.parametrize("model", sorted(GRAD_CASES))
def test_gradcheck_float64(model):
    from simulators import get_model

    rows, rts = GRAD_CASES[model]
    choices = get_model(model).choices
    fn = get_likelihood(model)
    for row, rt in zip(rows, rts):
        for c in choices:
            theta = torch.tensor(row, dtype=torch.float64, requires_grad=True)
            r = torch.tensor(rt, dtype=torch.float64)
            assert torch.autograd.gradcheck(
                lambda th, c=c, r=r: fn(r, torch.tensor(c), th), (theta,), eps=1e-6, atol=1e-5
            )


def test_gradcheck_rt_and_survival():
    theta = torch.tensor([0.8, 0.9, 0.4, 0.2], dtype=torch.float64)
    rt = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda r: log_likelihood("ddm", r, torch.tensor([1, -1]), theta), (rt,)
    )
    th = torch.tensor(
        [[0.8, 0.9, 0.4, 0.2], [-1.0, 0.5, 0.7, 0.3]], dtype=torch.float64, requires_grad=True
    )
    deadline = torch.tensor([0.3, 2.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ddm_log_survival(deadline, t), (th,))


def _box(model):
    """Sampling box: the registry's training box widened towards the support's edges."""
    from simulators import get_model

    spec = get_model(model)
    lo, hi = [], []
    for p in spec.params:
        s_lo, s_hi = p.support
        a, b = p.lower, p.upper
        # widen: halfway to a finite support edge, or 50% beyond the box otherwise
        a2 = (a + s_lo) / 2 if math.isfinite(s_lo) else a - 0.5 * (b - a)
        b2 = (b + s_hi) / 2 if math.isfinite(s_hi) else b + 0.5 * (b - a)
        lo.append(a2)
        hi.append(b2)
    return torch.tensor(lo), torch.tensor(hi), spec


def _sample_theta(model, n, dtype, gen):
    lo, hi, spec = _box(model)
    u = torch.rand(n, len(lo), generator=gen, dtype=torch.float64)
    theta = lo.double() + (hi - lo).double() * u
    names = spec.param_names
    if "b" in names and "A" in names:  # keep b > A (the support) but allow b close to A
        ia, ib = names.index("A"), names.index("b")
        theta[:, ib] = theta[:, ia] + 1e-3 + theta[:, ib]
    if model == "full_ddm":  # keep the ranges inside (0, 1) and t >= st/2
        z, sz = theta[:, 2], theta[:, 4]
        theta[:, 4] = torch.minimum(sz, 1.98 * torch.minimum(z, 1 - z))
        theta[:, 3] = torch.maximum(theta[:, 3], theta[:, 6] / 2)
    return theta.to(dtype), spec


EDGE = {
    # extreme but valid rows: z near 0/1, small a, large |v|
    "ddm": [
        [8.0, 0.05, 1e-4, 0.1],
        [-8.0, 0.05, 1 - 1e-4, 0.1],
        [0.0, 3.0, 0.5, 0.0],
        [15.0, 0.3, 0.999, 0.3],
    ],
    "ddm_sdv": [[8.0, 0.05, 1e-4, 0.1, 3.0], [-8.0, 3.0, 0.999, 0.1, 0.0]],
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "model",
    [
        "ddm",
        "ddm_sdv",
        "full_ddm",
        "lba2",
        "lba3",
        "lba4",
        "racing_diffusion_3",
        "poisson_race",
        "softmax_inv_temperature_2",
        "softmax_inv_temperature_3",
        "inv_temp_softmax_2",
        "inv_temp_softmax_3",
    ],
)
def test_sweep_values_and_gradients_finite(model, dtype):
    gen = torch.Generator().manual_seed(1234)
    n = 400 if model == "full_ddm" else 4000
    theta, spec = _sample_theta(model, n, dtype, gen)
    if model in EDGE:
        theta = torch.cat([theta, torch.tensor(EDGE[model], dtype=dtype)])
        n = theta.shape[0]
    names = spec.param_names
    t0 = theta[:, names.index("t")] if "t" in names else torch.zeros(n, dtype=dtype)
    if model == "full_ddm":
        t0 = t0 - theta[:, names.index("st")] / 2
    # decision times from 1e-6 s (tiny rt - t) to 30 s, log-uniform
    dec = torch.exp(
        torch.empty(n, dtype=torch.float64).uniform_(math.log(1e-6), math.log(30.0), generator=gen)
    ).to(dtype)
    rt = t0 + dec
    choices = torch.tensor(spec.choices)
    response = choices[torch.randint(len(choices), (n,), generator=gen)]
    theta = theta.clone().requires_grad_(True)
    rt = rt.clone().requires_grad_(True)
    out = log_likelihood(model, rt, response, theta, validate=True)
    assert out.dtype == dtype
    assert not torch.isnan(out).any()
    assert torch.isfinite(out).all(), out[~torch.isfinite(out)]
    out.sum().backward()
    assert torch.isfinite(theta.grad).all(), theta.grad[~torch.isfinite(theta.grad).any(-1)]
    if model.startswith(("softmax", "inv_temp")):
        assert rt.grad is None or (rt.grad == 0).all()  # choice-only: rt is ignored
    else:
        assert torch.isfinite(rt.grad).all()


@pytest.mark.parametrize("model", ["ddm", "ddm_sdv", "lba2", "racing_diffusion_3", "poisson_race"])
def test_floor_and_out_of_support(model):
    from simulators import get_model

    spec = get_model(model)
    theta = torch.tensor([p.default for p in spec.params], dtype=torch.float64, requires_grad=True)
    t = float(theta.detach()[spec.param_names.index("t")]) if "t" in spec.param_names else 0.0
    c = spec.choices[0]
    rt = torch.tensor([t - 0.1, t, t + 1e-300], dtype=torch.float64)
    out = log_likelihood(model, rt, torch.tensor(c), theta)
    assert out[0].item() == LOG_FLOOR and out[1].item() == LOG_FLOOR
    assert torch.isfinite(out[2])
    out.sum().backward()
    assert torch.isfinite(theta.grad).all()
    # one parameter below its support -> -inf, or ValueError naming it under validate
    for j, p in enumerate(spec.params):
        lo = p.support[0]
        if not math.isfinite(lo):
            continue
        bad = theta.detach().clone()
        bad[j] = lo - 1.0
        assert (
            log_likelihood(model, torch.tensor(t + 0.5), torch.tensor(c), bad).item() == -math.inf
        )
        with pytest.raises(ValueError, match=p.name):
            log_likelihood(model, torch.tensor(t + 0.5), torch.tensor(c), bad, validate=True)
