"""The networks shipped in hssm_torch/networks: loadable, documented, reproducible from a preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hssm_torch.network_registry import available_networks, load_network
from simulators import get_model

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = available_networks()
# the ones the project promises (docs/networks.md, "Shipped networks")
REQUIRED = [
    ("ddm", "lan"),
    ("ddm", "cpn"),
    ("ddm", "opn"),
    ("angle", "lan"),
    ("full_ddm", "lan"),
    ("levy", "lan"),
    ("ornstein", "lan"),
    ("race_no_bias_3", "lan"),
    ("weibull", "lan"),
]


def test_required_networks_are_shipped():
    missing = [pair for pair in REQUIRED if pair not in SHIPPED]
    assert not missing, f"missing shipped networks: {missing}; present: {SHIPPED}"


@pytest.mark.parametrize("model,kind", SHIPPED)
def test_shipped_network_loads_with_figures_and_preset(model, kind):
    net = load_network(model, kind)
    info = net.info
    spec = get_model(model)
    assert info["model"] == model and info["kind"] == kind
    assert info["param_names"] == list(spec.param_names)
    width = len(spec.param_names) + {"lan": 2, "cpn": 0, "opn": 1}[kind]
    x = torch.tensor(
        [[p.default if p.default is not None else (p.lower + p.upper) / 2 for p in spec.params]],
        dtype=torch.float32,
    )
    extra = {"lan": [[1.5, float(spec.choices[-1])]], "cpn": [[]], "opn": [[1.0]]}[kind]
    x = torch.cat([x, torch.tensor(extra, dtype=torch.float32).reshape(1, -1)], dim=1)
    assert x.shape[1] == width
    out = net(x)
    assert out.shape == (1, 1) and torch.isfinite(out).all()
    # and at the centre of the sidecar's training box (registry order)
    assert set(info["training_box"]) == set(spec.param_names)
    centre = [sum(info["training_box"][name]) / 2 for name in spec.param_names]
    xc = torch.tensor([centre], dtype=torch.float32)
    if kind == "lan":  # rt 1 s after the non-decision time (when the model has one)
        t = centre[spec.param_names.index("t")] if "t" in spec.param_names else 0.0
        xc = torch.cat([xc, torch.tensor([[t + 1.0, float(spec.choices[-1])]])], dim=1)
    elif kind == "opn":
        xc = torch.cat([xc, torch.tensor([[1.0]])], dim=1)
    assert torch.isfinite(net(xc)).all()
    if kind != "lan":
        assert float(out) <= 0.0  # log-probability

    figures = info["validation"]
    needed = {
        "lan": ["mass_mean", "mass_max_abs_dev"],
        "cpn": ["mae", "max_abs_error"],
        "opn": ["mae", "max_abs_error"],
    }[kind]
    if kind == "lan" and info["data_config"]["label_source"] == "analytical":
        needed += ["mae", "p95_abs_error", "max_abs_error"]
    for key in needed:
        assert isinstance(figures.get(key), float), (key, figures)

    # reproducible: the preset named in the sidecar composes to the recorded config
    preset = info["reproduce"].split("+experiment=")[-1]
    assert (CONFIG_DIR / "experiment" / f"{preset}.yaml").is_file()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(
            compose(config_name="train", overrides=[f"+experiment={preset}"]), resolve=True
        )
    recorded = info["training_config"]
    for key in (
        "model",
        "label_source",
        "generate",
        "network",
        "batch_size",
        "seed",
        "val_fraction",
    ):
        assert recorded[key] == cfg[key], key
    for key in ("max_epochs", "max_time", "early_stopping_patience"):
        assert recorded["trainer"][key] == cfg["trainer"][key], key
    gen = info["data_config"]["generator_config"]
    for key in ("n_parameter_sets", "n_simulations", "n_training_rows", "n_shards", "seed"):
        assert gen[key] == cfg["generate"][key], key


def test_shipped_ddm_lan_figures_hold_at_fresh_points():
    """A fresh, small evaluation (other θ and trials than the sidecar's) agrees with the
    sidecar's figures: they describe this network, not another one."""
    from training.evaluate import evaluate_lan

    net = load_network("ddm", "lan")
    recorded = net.info["validation"]
    rep = evaluate_lan(
        net, "ddm", n_theta=10, n_trials=20, n_mass_theta=2, seed=123, box={"a": [0.3, 1.2]}
    )
    assert rep["mae"] < 2 * recorded["mae"] + 0.05, (rep, recorded)
    assert recorded["mass_min"] - 0.05 < rep["mass_min"], (rep, recorded)
    assert rep["mass_max"] < recorded["mass_max"] + 0.05, (rep, recorded)
