"""The likelihood registry and the user-callable contract."""

from __future__ import annotations

import math

import pytest
import torch

from hssm_torch.likelihoods import (
    LOG_FLOOR,
    get_likelihood,
    list_likelihoods,
    log_likelihood,
    racing_diffusion_3_log_likelihood,
    register_likelihood,
    unregister_likelihood,
)

BUILTINS = {
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
}


def test_builtins_registered_and_match_model_registry():
    from simulators import get_model

    assert BUILTINS <= set(list_likelihoods())
    for name in BUILTINS:
        spec = get_model(name)
        theta = torch.tensor([p.default for p in spec.params], dtype=torch.float64)
        out = log_likelihood(
            name, torch.tensor(1.5, dtype=torch.float64), torch.tensor(spec.choices[0]), theta
        )
        assert out.shape == () and torch.isfinite(out)


def test_theta_is_permuted_from_registry_order():
    # racing_diffusion_3's function takes HSSM order (A, b, v0, v1, v2, t); the registry's
    # order is used by log_likelihood whatever it is.
    from simulators import get_model

    names = get_model("racing_diffusion_3").param_names
    values = {"A": 0.4, "b": 1.3, "v0": 1.1, "v1": 0.5, "v2": 0.8, "t": 0.2}
    theta_reg = torch.tensor([values[n] for n in names], dtype=torch.float64)
    theta_fn = torch.tensor(
        [values[n] for n in ("A", "b", "v0", "v1", "v2", "t")], dtype=torch.float64
    )
    rt, resp = torch.tensor([0.9, 1.4], dtype=torch.float64), torch.tensor([0, 2])
    assert torch.equal(
        log_likelihood("racing_diffusion_3", rt, resp, theta_reg),
        racing_diffusion_3_log_likelihood(rt, resp, theta_fn),
    )


def test_lba_optional_t():
    th = torch.tensor([0.3, 0.6, 0.8, 0.5], dtype=torch.float64)
    rt = torch.tensor([0.7, 0.9], dtype=torch.float64)
    resp = torch.tensor([0, 1])
    no_t = log_likelihood("lba2", rt, resp, th)
    with_t = log_likelihood("lba2", rt + 0.25, resp, torch.cat([th, torch.tensor([0.25])]))
    assert torch.allclose(no_t, with_t, atol=1e-12)


def test_batch_shapes_broadcast():
    theta = torch.tensor(
        [[1.0, 1.0, 0.5, 0.2], [0.5, 0.8, 0.4, 0.1], [-1.0, 1.5, 0.6, 0.3]], dtype=torch.float64
    )  # (3, 4)
    rt = torch.full((5, 1), 0.9, dtype=torch.float64)  # (5, 1)
    out = log_likelihood("ddm", rt, torch.tensor(1), theta)
    assert out.shape == (5, 3)
    assert torch.allclose(out[2], log_likelihood("ddm", torch.tensor(0.9), torch.tensor(1), theta))


def test_dtype_and_float32_agree_with_float64():
    theta = torch.tensor([[1.0, 1.0, 0.5, 0.2], [-2.0, 0.6, 0.3, 0.1]])
    rt = torch.tensor([0.6, 1.3])
    resp = torch.tensor([1, -1])
    o32 = log_likelihood("ddm", rt, resp, theta)
    o64 = log_likelihood("ddm", rt.double(), resp, theta.double())
    assert o32.dtype == torch.float32
    assert torch.allclose(o32.double(), o64, atol=1e-4)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="ddm"):
        get_likelihood("dddm")
    with pytest.raises(ValueError, match=r"theta .*shape"):
        log_likelihood("ddm", torch.tensor(1.0), torch.tensor(1), torch.ones(3))
    with pytest.raises(ValueError, match="response"):
        log_likelihood(
            "ddm",
            torch.tensor(1.0),
            torch.tensor(0),
            torch.tensor([1.0, 1.0, 0.5, 0.2]),
            validate=True,
        )
    out = log_likelihood(
        "ddm", torch.tensor(1.0), torch.tensor(0), torch.tensor([1.0, 1.0, 0.5, 0.2])
    )
    assert out.item() == pytest.approx(LOG_FLOOR)
    with pytest.raises(ValueError, match="b > A"):
        log_likelihood(
            "lba2",
            torch.tensor(1.0),
            torch.tensor(0),
            torch.tensor([0.6, 0.5, 0.5, 0.5]),
            validate=True,
        )
    assert (
        log_likelihood(
            "lba2", torch.tensor(1.0), torch.tensor(0), torch.tensor([0.6, 0.5, 0.5, 0.5])
        ).item()
        == -math.inf
    )


def test_register_user_callable():
    calls = []

    def exp_race(rt, response, theta):
        calls.append(theta.shape)
        return torch.log(theta[..., 0]) - theta[..., 0] * rt

    register_likelihood("user_exponential", exp_race)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_likelihood("user_exponential", exp_race)
        out = log_likelihood(
            "user_exponential",
            torch.tensor([1.0, 2.0]),
            torch.tensor([1, 1]),
            torch.tensor([[2.0]]),
            validate=True,
        )  # no validate kwarg: not passed
        assert torch.allclose(out, torch.log(torch.tensor(2.0)) - 2.0 * torch.tensor([1.0, 2.0]))
        assert calls
        register_likelihood("user_exponential", exp_race, overwrite=True)
    finally:
        unregister_likelihood("user_exponential")
    assert "user_exponential" not in list_likelihoods()
    with pytest.raises(TypeError):
        register_likelihood("bad", 3)  # type: ignore[arg-type]
