"""simulate(): input validation, result layout, omissions, reproducibility, every model runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simulators import get_model, list_models
from simulators.data import simulate_data
from simulators.simulate import OMITTED_RESPONSE, OMITTED_RT, simulate

DDM = {"v": 0.5, "a": 1.0, "z": 0.5, "t": 0.3}


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "dmm"}, r"unknown model 'dmm'.*did you mean 'ddm'"),
        ({"theta": {"v": 0.5, "a": 1.0, "z": 0.5}}, r"theta: missing parameter\(s\) \['t'\]"),
        ({"theta": {**DDM, "sv": 0.1}}, r"theta: unknown parameter\(s\) \['sv'\]"),
        ({"theta": {**DDM, "a": 5.0}}, r"theta\['a'\]: value 5.0 is outside .*\[0.3, 2.5\]"),
        ({"theta": {**DDM, "v": float("nan")}}, r"theta\['v'\]: expected finite values"),
        ({"theta": {**DDM, "t": float("inf")}}, r"theta\['t'\]: expected finite values"),
        ({"n_samples": 0}, r"n_samples: expected an integer >= 1, got 0"),
        ({"n_samples": 2.5}, r"n_samples: expected an integer >= 1"),
        ({"dt": 0.0}, r"dt: expected a finite number > 0, got 0.0"),
        ({"dt": -1e-3}, r"dt: expected a finite number > 0"),
        ({"max_t": 1e-3}, r"max_t: expected a finite number > dt"),
        (
            {"theta": {**DDM, "v": [0.1, 0.2], "a": [1.0, 1.1, 1.2]}},
            r"theta: parameters have different lengths",
        ),
        ({"theta": torch.zeros(3, 5)}, r"theta: expected 4 columns \['v', 'a', 'z', 't'\]"),
        ({"theta": torch.zeros(2, 2, 4)}, r"theta: expected shape \(B, 4\)"),
        (
            {"theta": {**DDM, "v": np.zeros((2, 2))}},
            r"theta\['v'\]: expected a scalar or a 1-D tensor",
        ),
        ({"theta": {**DDM, "v": "fast"}}, r"theta\['v'\]: expected a float or a 1-D tensor"),
        (
            {
                "method": "bridge",
                "model": "lba2",
                "theta": {"A": 0.3, "b": 0.5, "v0": 0.5, "v1": 0.5},
            },
            r"method: 'bridge' is not available for model 'lba2'",
        ),
        (
            {"method": "exact", "model": "angle", "theta": {**DDM, "theta": 0.1}},
            r"method: 'exact' is not available for model 'angle'",
        ),
        ({"method": "milstein"}, r"method: 'milstein' is not available for model 'ddm'"),
        ({"seed": -1}, r"seed: expected None or an integer in \[0, 2\*\*63\)"),
        ({"chunk_size": 0}, r"chunk_size: expected an integer >= 1 or None"),
        ({"dtype": torch.int32}, r"dtype: expected a torch floating dtype"),
    ],
)
def test_bad_input_raises_naming_the_parameter(kwargs, match):
    args = {"model": "ddm", "theta": DDM, "n_samples": 10, **kwargs}
    model, theta, n = args.pop("model"), args.pop("theta"), args.pop("n_samples")
    with pytest.raises(ValueError, match=match):
        simulate(model, theta, n, **args)


def test_out_of_bounds_allowed_with_flag_but_not_outside_support():
    res = simulate("ddm", {**DDM, "a": 3.0}, 20, seed=0, allow_out_of_bounds=True)
    assert res.rt.shape == (1, 20)
    with pytest.raises(
        ValueError, match=r"theta\['a'\]: value -1.0 is outside the model's support"
    ):
        simulate("ddm", {**DDM, "a": -1.0}, 20, allow_out_of_bounds=True)


def test_simulate_data_bad_size_and_theta_rows():
    with pytest.raises(ValueError, match="size: expected an integer >= 1"):
        simulate_data("ddm", DDM, 0)
    with pytest.raises(ValueError, match=r"theta: expected one parameter set or 5"):
        simulate_data("ddm", {**DDM, "v": [0.1, 0.2, 0.3]}, 5)


# ---- layout ---------------------------------------------------------------------------------
def test_theta_forms_agree_and_optional_defaults():
    spec = get_model("ddm")
    mat = torch.tensor([[0.5, 1.0, 0.5, 0.3], [-0.5, 1.2, 0.4, 0.2]])
    as_dict = {n: mat[:, i] for i, n in enumerate(spec.param_names)}
    r1 = simulate("ddm", mat, 50, seed=3)
    r2 = simulate("ddm", as_dict, 50, seed=3)
    r3 = simulate("ddm", mat.numpy(), 50, seed=3)
    assert torch.equal(r1.rt, r2.rt) and torch.equal(r1.rt, r3.rt)
    assert r1.rt.shape == (2, 50) and r1.rt.dtype == torch.float32
    assert r1.response.dtype == torch.int64 and r1.omitted.dtype == torch.bool
    assert set(r1.response.unique().tolist()) <= {-1, 1}
    assert (r1.rt > mat[:, 3:4]).all()
    # lba: optional t may be omitted (dict or required-columns tensor) and defaults to 0
    lba = {"A": 0.3, "b": 0.6, "v0": 0.5, "v1": 0.6}
    a = simulate("lba2", lba, 30, seed=1)
    b = simulate("lba2", torch.tensor([[0.3, 0.6, 0.5, 0.6]]), 30, seed=1)
    c = simulate("lba2", {**lba, "t": 0.0}, 30, seed=1)
    assert torch.equal(a.rt, b.rt) and torch.equal(a.rt, c.rt)
    assert a.theta.shape == (1, 5) and float(a.theta[0, 4]) == 0.0


def test_metadata_and_fresh_seed_is_recorded():
    res = simulate("angle", {**DDM, "theta": 0.2}, 40, dt=2e-3, max_t=10.0)
    assert res.model == "angle" and res.dt == 2e-3 and res.max_t == 10.0
    assert res.method == "bridge" and isinstance(res.seed, int)
    again = simulate("angle", {**DDM, "theta": 0.2}, 40, dt=2e-3, max_t=10.0, seed=res.seed)
    assert torch.equal(res.rt, again.rt) and torch.equal(res.response, again.response)


def test_omitted_trials_are_flagged_not_mixed():
    # a = 1, v = 0: mean decision time a^2 = 1 s; max_t = 0.5 s leaves many undecided
    res = simulate("ddm", {"v": 0.0, "a": 1.0, "z": 0.5, "t": 0.2}, 500, max_t=0.5, seed=2)
    om = res.omitted
    assert 0 < int(om.sum()) < 500
    assert (res.rt[om] == OMITTED_RT).all() and (res.response[om] == OMITTED_RESPONSE).all()
    assert (res.rt[~om] <= 0.5 + 0.2 + 1e-6).all() and set(res.response[~om].tolist()) <= {-1, 1}
    df = simulate_data("ddm", {"v": 0.0, "a": 1.0, "z": 0.5, "t": 0.2}, 100, max_t=0.5, seed=2)
    assert df.attrs["n_omitted"] == int((df.rt == OMITTED_RT).sum()) > 0


def test_simulate_data_columns():
    df = simulate_data("ddm", DDM, 20, seed=0)
    assert list(df.columns) == ["rt", "response"] and len(df) == 20
    v = np.linspace(-1, 1, 6)
    df2 = simulate_data("ddm", {**DDM, "v": v}, 6, seed=0)
    assert list(df2.columns) == ["rt", "response", "v", "a", "z", "t"]
    np.testing.assert_allclose(df2.v.to_numpy(), v, rtol=1e-6)


# ---- reproducibility ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("ddm", {}),
        ("full_ddm", {"sz": 0.1, "sv": 0.5, "st": 0.1}),
        ("levy", {"alpha": 1.5}),
        ("race_no_bias_3", {}),
        ("lba2", {}),
        ("ddm_seq2_no_bias", {}),
    ],
)
def test_same_seed_same_draws_whatever_the_chunking_and_batch(model, extra):
    spec = get_model(model)
    gen = torch.Generator().manual_seed(0)
    b = 5
    n = 20
    lo = torch.tensor([p.lower for p in spec.params])
    hi = torch.tensor([p.upper for p in spec.params])
    mat = lo + (hi - lo) * torch.rand(b, len(lo), generator=gen) * 0.5 + (hi - lo) * 0.25
    for name, val in extra.items():
        mat[:, spec.index(name)] = val
    kw = {"seed": 11, "max_t": 1.5, "dt": 2e-3}
    ref = simulate(model, mat, n, **kw)
    for chunk in (3, 16, 10_000):
        res = simulate(model, mat, n, chunk_size=chunk, **kw)
        assert torch.equal(res.rt, ref.rt) and torch.equal(res.response, ref.response), chunk
    # the first sets do not depend on the sets after them
    head = simulate(model, mat[:2], n, **kw)
    assert torch.equal(head.rt, ref.rt[:2]) and torch.equal(head.response, ref.response[:2])
    changed = mat.clone()
    changed[3:] = mat[0]
    other = simulate(model, changed, n, **kw)
    assert torch.equal(other.rt[:3], ref.rt[:3])
    # different seeds differ; different sets with equal parameters get different draws
    assert not torch.equal(simulate(model, mat, n, **{**kw, "seed": 12}).rt, ref.rt)
    assert not torch.equal(other.rt[0], other.rt[3])


# ---- every model ----------------------------------------------------------------------------
@pytest.mark.parametrize("model", list_models())
def test_every_registry_model_simulates(model):
    spec = get_model(model)
    res = simulate(model, spec.defaults, 64, seed=5, max_t=2.0)
    assert res.rt.shape == (1, 64) and res.response.shape == (1, 64)
    ok = ~res.omitted
    assert set(res.response[ok].tolist()) <= set(spec.choices)
    if spec.simulator == "softmax":
        assert (res.rt == -1.0).all() and not res.omitted.any()
    else:
        t = spec.defaults.get("t", 0.0)
        assert (res.rt[ok] >= t - 1e-6).all()
        assert (res.rt[ok] <= 2.0 + t + 0.3).all()
    assert bool(ok.any())


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["ddm", "angle", "race_no_bias_3", "lba2", "ornstein"])
def test_cuda_matches_cpu_in_distribution(model):
    """Same code on CUDA: outputs live on the GPU, are reproducible there, and agree with the
    CPU draws in distribution (mean rt and choice proportions within 5 standard errors)."""
    spec = get_model(model)
    n = 20_000
    gpu = simulate(model, spec.defaults, n, seed=3, device="cuda", max_t=5.0)
    assert gpu.rt.device.type == "cuda" and gpu.response.device.type == "cuda"
    again = simulate(model, spec.defaults, n, seed=3, device="cuda", max_t=5.0, chunk_size=777)
    assert torch.equal(gpu.rt, again.rt)
    cpu = simulate(model, spec.defaults, n, seed=4, max_t=5.0)
    a, b = gpu.rt[~gpu.omitted].cpu().double(), cpu.rt[~cpu.omitted].double()
    se = float(np.hypot(a.std() / np.sqrt(len(a)), b.std() / np.sqrt(len(b))))
    assert abs(float(a.mean() - b.mean())) < 5 * se
    for c in spec.choices:
        pa = float((gpu.response.cpu() == c).double().mean())
        pb = float((cpu.response == c).double().mean())
        assert abs(pa - pb) < 5 * np.sqrt(max(pa * (1 - pa), 1e-4) * 2 / n)
