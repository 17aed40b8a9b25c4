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
