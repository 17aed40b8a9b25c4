"""The model registry against ssm-simulators 0.15 and HSSM 0.5, and register_model's checks."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from simulators import ModelSpec, ParamSpec, get_model, list_models, register_model
from simulators.docs import render_models_markdown
from simulators.models import DEPARTURES
from simulators.registry import unregister_model

REPO = Path(__file__).resolve().parents[2]

# HSSM calls its softmax models softmax_inv_temperature_*; ssm-simulators' inv_temp_softmax_*
# are a different parameterization (values q instead of logits) and registered under their own
# names, so the name-based matching below compares like with like.


def _load(reference_dir: Path, name: str) -> dict:
    return json.loads((reference_dir / name).read_text())["models"]


def test_at_least_30_models_each_with_description_and_reference():
    names = list_models()
    assert len(names) >= 30
    for n in names:
        s = get_model(n)
        assert s.description.strip(), n
        assert s.reference.strip(), n
        for p in s.params:
            assert p.lower <= p.default <= p.upper, (n, p.name)


def test_issue_models_are_registered():
    required = (
        "ddm ddm_sdv full_ddm angle levy ornstein weibull race_no_bias_angle_4 ddm_seq2_no_bias "
        "lba2 lba3 lba4 racing_diffusion_3 poisson_race softmax_inv_temperature_2 "
        "softmax_inv_temperature_3 race_no_bias_3 race_no_bias_4 race_no_bias_angle_3 "
        "lca_no_bias_3 lca_no_bias_4 levy_angle ornstein_angle gamma_drift ddm_st "
        "ddm_par2_no_bias ddm_mic2_adj_no_bias"
    ).split()
    missing = sorted(set(required) - set(list_models()))
    assert not missing, missing


@pytest.mark.reference
def test_registry_matches_ssm_simulators(reference_dir):
    ref = _load(reference_dir, "ssm_simulators_models.json")
    shared = [n for n in list_models() if n in ref]
    assert len(shared) >= 40
    for n in shared:
        spec, r = get_model(n), ref[n]
        ours = list(spec.required_param_names)
        if (n, "ssm", "order") in DEPARTURES:
            assert sorted(ours) == sorted(r["params"]), n
        else:
            assert ours == r["params"], n
        for name in r["params"]:
            p = spec.param(name)
            assert (p.lower, p.upper) == pytest.approx(tuple(r["param_bounds"][name])), (n, name)
            default = r["default_params"].get(name)
            if default is not None and (n, "ssm", "default") not in DEPARTURES:
                assert p.default == pytest.approx(default), (n, name)
        if r.get("choices") is not None:
            assert list(spec.choices) == r["choices"], n
        assert spec.n_accumulators == (
            r["n_particles"] if spec.simulator != "racing_diffusion" else 3
        )


@pytest.mark.reference
def test_registry_matches_hssm(reference_dir):
    ref = _load(reference_dir, "hssm_models.json")
    assert set(ref) <= set(list_models()), sorted(set(ref) - set(list_models()))
    for n, r in ref.items():
        spec = get_model(n)
        assert list(spec.required_param_names) == r["list_params"], n
        assert list(spec.choices) == r["choices"], n
        for kind, cfg in r["kinds"].items():
            for name, (lo, hi) in cfg["bounds"].items():
                p = spec.param(name)
                if kind == "approx_differentiable":
                    # the network's training box: ours must match unless documented
                    if (n, "hssm", "bounds") not in DEPARTURES:
                        assert (p.lower, p.upper) == pytest.approx((lo, hi)), (n, name)
                    else:
                        assert p.lower >= lo and p.upper <= hi, (n, name)
                elif (n, "hssm", "support") not in DEPARTURES:
                    # HSSM's analytical / blackbox bounds are where it lets a sampler go: our
                    # support must contain them, so no fit that HSSM allows is refused here
                    s_lo, s_hi = p.support
                    assert s_lo <= lo and hi <= s_hi, (n, name, p.support, (lo, hi))


def test_every_departure_is_documented_on_the_model():
    for model, _source, _field in DEPARTURES:
        assert get_model(model).notes, model


def test_docs_models_md_in_sync():
    text = (REPO / "docs" / "models.md").read_text()
    assert text == render_models_markdown(), "run `make docs-models` to regenerate docs/models.md"


def _good() -> ModelSpec:
    return ModelSpec(
        name="test_custom_model",
        params=(
            ParamSpec("v", -3.0, 3.0, 0.0),
            ParamSpec("a", 0.3, 2.5, 1.0),
            ParamSpec("z", 0.1, 0.9, 0.5),
            ParamSpec("t", 0.0, 2.0, 0.2),
            ParamSpec("theta", -0.1, 1.3, 0.0),
        ),
        choices=(-1, 1),
        simulator="ddm",
        boundary="angle",
        description="custom angle model",
        reference="test",
    )


def test_register_model_accepts_a_good_spec_and_rejects_duplicates():
    spec = register_model(_good())
    try:
        assert get_model("test_custom_model") is spec
        with pytest.raises(ValueError, match=r"test_custom_model.*name: already registered"):
            register_model(_good())
    finally:
        unregister_model("test_custom_model")


def _with_param(i: int, **changes) -> ModelSpec:
    good = _good()
    params = list(good.params)
    params[i] = replace(params[i], **changes)
    return replace(good, params=tuple(params), _index={})


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        (_with_param(1, default=3.0), r"params\['a'\]\.default: 3.0 is outside the bounds"),
        (_with_param(0, lower=3.0), r"params\['v'\]: lower \(3.0\) must be < upper \(3.0\)"),
        (_with_param(2, upper=0.05), r"params\['z'\]: lower \(0.1\) must be < upper"),
        (_with_param(3, upper=math.nan), r"params\['t'\]\.upper: expected a finite number"),
        (
            replace(_good(), simulator="teleport", _index={}),
            r"simulator: unknown simulator kind 'teleport'",
        ),
        (
            replace(_good(), boundary="zigzag", _index={}),
            r"boundary: unknown boundary function 'zigzag'",
        ),
        (replace(_good(), drift="wobble", _index={}), r"drift: unknown drift function 'wobble'"),
        (
            replace(_good(), boundary_params=("gamma",), _index={}),
            r"boundary_params: 'gamma' is not a parameter",
        ),
        (replace(_good(), choices=(1, 1), _index={}), r"choices: expected distinct response codes"),
        (replace(_good(), name="my model", _index={}), r"name: expected a Python identifier"),
        (
            replace(_good(), description="", _index={}),
            r"description: expected a one-line description",
        ),
        (
            replace(_good(), n_accumulators=0, _index={}),
            r"n_accumulators: expected an integer >= 1",
        ),
        (_with_param(4, name="v"), r"params\['v'\]: duplicate parameter name"),
        (
            _with_param(1, support=(0.5, math.inf)),
            r"params\['a'\]\.support: \(0.5, inf\) must contain",
        ),
        (_with_param(2, optional=True), r"params\['t'\]: optional parameters must come after"),
    ],
)
def test_register_model_rejects_bad_specs_naming_the_field(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        register_model(spec)
    assert "test_custom_model" not in list_models()


def test_register_model_rejects_non_spec():
    with pytest.raises(TypeError, match="expects a ModelSpec"):
        register_model({"name": "x"})


def test_get_model_suggests_close_names():
    with pytest.raises(ValueError, match=r"unknown model 'ddm_sdvv'.*did you mean 'ddm_sdv'"):
        get_model("ddm_sdvv")


def test_user_callable_boundary_is_accepted():
    import torch

    def exp_collapse(t, a, tau):
        return a * torch.exp(-t / tau)

    good = _good()
    params = (*good.params[:4], ParamSpec("tau", 0.1, 5.0, 1.0))
    spec = replace(
        good,
        name="test_exp_bound",
        params=params,
        boundary=exp_collapse,
        boundary_params=("tau",),
        _index={},
    )
    register_model(spec)
    try:
        fn = get_model("test_exp_bound").boundary_fn()
        assert float(fn(torch.tensor(0.0), torch.tensor(2.0), torch.tensor(1.0))) == 2.0
    finally:
        unregister_model("test_exp_bound")
