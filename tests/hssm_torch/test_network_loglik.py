"""The network likelihood path: box penalty and the rt <= t floor."""

from __future__ import annotations

import pandas as pd
import torch

from hssm_torch import HSSM
from hssm_torch.model import NETWORK_OUT_OF_BOX_LOGLIK


def _angle_model() -> HSSM:
    df = pd.DataFrame({"rt": [0.25, 0.9, 1.4], "response": [1, -1, 1]})
    return HSSM(data=df, model="angle", loglik_kind="approx_differentiable")


def test_rt_before_non_decision_time_gets_the_floor_not_the_network():
    model = _angle_model()
    rt = torch.tensor([0.25, 0.9, 1.4], dtype=torch.float64)
    resp = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    theta = torch.tensor([0.5, 1.0, 0.5, 0.5, 0.2], dtype=torch.float64).expand(3, 5)
    ll = model.builder.loglik(rt, resp, theta)
    # trial 0 has rt 0.25 < t = 0.5: the floor; the others are the network's finite values
    assert ll[0] == NETWORK_OUT_OF_BOX_LOGLIK
    assert torch.isfinite(ll[1:]).all() and (ll[1:] > NETWORK_OUT_OF_BOX_LOGLIK).all()
    # with t below every rt, no trial is floored
    theta2 = theta.clone()
    theta2[:, 3] = 0.1
    assert (model.builder.loglik(rt, resp, theta2) > NETWORK_OUT_OF_BOX_LOGLIK).all()


def test_parameters_outside_the_training_box_get_the_penalty():
    model = _angle_model()
    rt = torch.tensor([0.9], dtype=torch.float64)
    resp = torch.tensor([1.0], dtype=torch.float64)
    theta = torch.tensor([[0.5, 1.0, 0.5, 0.3, 5.0]], dtype=torch.float64)  # theta far outside
    assert model.builder.loglik(rt, resp, theta)[0] == NETWORK_OUT_OF_BOX_LOGLIK


def test_network_runs_in_its_weights_dtype_and_the_gradient_reaches_theta():
    from hssm_torch.network_registry import load_network

    model = _angle_model()
    net = load_network("angle", "lan")
    rt = torch.tensor([0.9, 1.4], dtype=torch.float64)
    resp = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    theta = torch.tensor([0.5, 1.0, 0.5, 0.3, 0.2], dtype=torch.float64).expand(2, 5).clone()
    theta.requires_grad_(True)
    ll = model.builder.loglik(rt, resp, theta)
    x = torch.cat([theta.detach(), rt.unsqueeze(-1), resp.unsqueeze(-1)], -1)
    # float32 evaluation of the float32 weights, returned as float64
    assert ll.dtype == torch.float64
    assert torch.equal(ll.detach(), net(x.float()).squeeze(-1).double())
    # the float64 evaluation differs in the last float32 digits only
    want64 = net.double()(x).squeeze(-1)
    assert not torch.equal(ll.detach(), want64)
    assert torch.allclose(ll.detach(), want64, rtol=0, atol=1e-5)
    (g,) = torch.autograd.grad(ll.sum(), theta)
    assert g.dtype == torch.float64 and torch.isfinite(g).all() and (g != 0).any()


def test_a_float64_network_runs_in_float64():
    from hssm_torch.network_registry import load_network

    net64 = load_network("angle", "lan").double()
    df = pd.DataFrame({"rt": [0.9, 1.4], "response": [-1, 1]})
    model = HSSM(data=df, model="angle", loglik_kind="approx_differentiable", loglik=net64)
    rt = torch.tensor([0.9, 1.4], dtype=torch.float64)
    resp = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    theta = torch.tensor([0.5, 1.0, 0.5, 0.3, 0.2], dtype=torch.float64).expand(2, 5)
    x = torch.cat([theta, rt.unsqueeze(-1), resp.unsqueeze(-1)], -1)
    assert torch.equal(model.builder.loglik(rt, resp, theta), net64(x).squeeze(-1))
