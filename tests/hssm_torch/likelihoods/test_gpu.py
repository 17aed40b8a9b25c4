"""CUDA: the likelihoods run on the input's device and agree with CPU."""

from __future__ import annotations

import pytest
import torch

from hssm_torch.likelihoods import ddm_log_survival, log_likelihood

pytestmark = pytest.mark.gpu

CASES = {
    "ddm": [0.8, 0.9, 0.4, 0.2],
    "ddm_sdv": [0.8, 0.9, 0.4, 0.2, 0.7],
    "full_ddm": [0.8, 0.9, 0.4, 0.4, 0.1, 0.7, 0.2],
    "lba2": [0.3, 0.6, 0.8, 0.5, 0.1],
    "racing_diffusion_3": [0.5, 1.5, 1.0, 1.5, 0.8, 0.2],
    "poisson_race": [3.0, 4.0, 2.0, 3.0, 0.2],
    "softmax_inv_temperature_3": [1.5, 0.3, -0.4],
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model", sorted(CASES))
def test_cuda_matches_cpu(model, dtype):
    from simulators import get_model

    choices = torch.tensor(get_model(model).choices)
    rt = torch.linspace(0.3, 3.0, 64, dtype=dtype)
    resp = choices[torch.arange(64) % len(choices)]
    theta = torch.tensor(CASES[model], dtype=dtype)
    cpu = log_likelihood(model, rt, resp, theta)
    th = theta.cuda().requires_grad_(True)
    gpu = log_likelihood(model, rt.cuda(), resp.cuda(), th)
    assert gpu.device.type == "cuda"
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert torch.allclose(gpu.cpu(), cpu, atol=tol, rtol=tol)
    gpu.sum().backward()
    assert torch.isfinite(th.grad).all()


def test_cuda_survival():
    th = torch.tensor([0.8, 0.9, 0.4, 0.2], dtype=torch.float64)
    d = torch.tensor([0.3, 1.0, 5.0], dtype=torch.float64)
    assert torch.allclose(ddm_log_survival(d.cuda(), th.cuda()).cpu(), ddm_log_survival(d, th))
