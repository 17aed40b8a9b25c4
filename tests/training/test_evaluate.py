"""training.evaluate: accuracy reports, checked with networks whose errors are known exactly.

The "oracle" networks compute the analytical DDM quantities (hssm_torch.likelihoods), so a
report on them must show zero error (LAN) or only Monte-Carlo noise (CPN/OPN); a known
offset must be reported as exactly that offset.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hssm_torch.likelihoods.ddm_extras import ddm_choice_probability, ddm_log_survival
from hssm_torch.likelihoods.wfpt import ddm_log_likelihood
from training.analytical_labels import analytical_targets
from training.evaluate import (
    data_like_points,
    density_mass,
    evaluate_cpn,
    evaluate_lan,
    evaluate_network,
    evaluate_opn,
    heldout_errors,
    sample_box,
)

# boxes with short decision times keep the simulations in these tests cheap
SHORT = {"a": [0.3, 0.5]}


class OracleLAN(torch.nn.Module):
    """[v, a, z, t, rt, response] -> exact DDM log-likelihood (+ offset), float64."""

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("offset", torch.tensor(offset, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (ddm_log_likelihood(x[:, 4], x[:, 5], x[:, :4]) + self.offset)[:, None]


class OracleCPN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dummy", torch.zeros((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ddm_choice_probability(x, torch.full_like(x[:, 0], -1.0)).log()[:, None]


class OracleOPN(OracleCPN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ddm_log_survival(x[:, 4], x[:, :4])[:, None]


def test_sample_box_is_float32_exact_and_inside():
    th = sample_box("ddm", 2000, seed=3, box={"v": [-1.0, 1.0]})
    assert th.dtype == torch.float64
    torch.testing.assert_close(th.float().double(), th, rtol=0, atol=0)
    assert float(th[:, 0].min()) >= -1.0 and float(th[:, 0].max()) <= 1.0
    assert float(th[:, 1].min()) >= 0.3 and float(th[:, 1].max()) <= 2.5
    torch.testing.assert_close(sample_box("ddm", 5, seed=3), sample_box("ddm", 5, seed=3))


def test_data_like_points_follow_the_model():
    theta = torch.tensor([[1.0, 0.5, 0.5, 0.3]], dtype=torch.float64)
    rows, rt, resp = data_like_points("ddm", theta, 5_000, seed=1)
    assert rows.shape == (5_000, 4) and float(rt.min()) > 0.3
    p_upper = float((resp == 1).double().mean())
    exact = float(ddm_choice_probability(theta[0], torch.tensor(1.0)))
    assert abs(p_upper - exact) < 4 * math.sqrt(exact * (1 - exact) / 5_000)


def test_density_mass_of_the_exact_density_is_one():
    theta = sample_box("ddm", 3, seed=2)
    masses = density_mass(OracleLAN(), "ddm", theta)
    # P(response by t + 20 s) is 1 to < 1e-6 for these θ; the log grid integrates to ~1e-4
    assert torch.allclose(masses, torch.ones_like(masses), atol=2e-3), masses
    shifted = density_mass(OracleLAN(offset=0.1), "ddm", theta)
    torch.testing.assert_close(shifted, masses * math.exp(0.1))


class ExponentialRaceLAN(torch.nn.Module):
    """race_no_bias_3 rows [v0, v1, v2, a, z, t, rt, response] -> log((1/3)·exp(-(rt - t))):
    each of the three responses carries a third of an exponential density after t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (math.log(1 / 3) - (x[:, 6] - x[:, 5]))[:, None]


def test_density_mass_sums_over_all_choices_of_an_n_choice_model():
    theta = sample_box("race_no_bias_3", 3, seed=2)
    masses = density_mass(ExponentialRaceLAN(), "race_no_bias_3", theta)
    # ∫_{1e-5}^{20} e^{-u} du = 1 - 1e-5 - 2e-9: only all three responses together give 1
    assert torch.allclose(masses, torch.ones_like(masses), atol=1e-3), masses


def test_evaluate_lan_reports_known_errors_and_compare():
    exact = evaluate_lan(
        OracleLAN(), "ddm", n_theta=20, n_trials=30, n_mass_theta=3, seed=1, box=SHORT
    )
    assert exact["mae"] < 1e-9 and exact["max_abs_error"] < 1e-9
    assert abs(exact["mass_mean"] - 1) < 2e-3
    assert exact["n_theta"] == 20 and 0 < exact["n_points"] <= 600
    off = evaluate_lan(
        OracleLAN(offset=-0.25),
        "ddm",
        n_theta=20,
        n_trials=30,
        n_mass_theta=3,
        seed=1,
        compare={"ref": OracleLAN()},
        box=SHORT,
    )
    assert off["mae"] == pytest.approx(0.25, abs=1e-9)
    assert off["p95_abs_error"] == pytest.approx(0.25, abs=1e-9)
    assert off["ref_mae"] < 1e-9  # same points for every network
    assert off["mass_mean"] == pytest.approx(exact["mass_mean"] * math.exp(-0.25), rel=1e-9)
    assert off["ref_mass_mean"] == pytest.approx(exact["mass_mean"], rel=1e-12)


def test_heldout_errors_against_shard_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, size=(500, 6)).astype(np.float32)
    y = rng.normal(-1.0, 1.0, size=500).astype(np.float32)
    y[:50] = -66.77497  # floored rows are left out
    np.savez(tmp_path / "shard-00000.npz", lan_inputs=x, lan_targets=y)
    const = OracleLAN()
    const.forward = lambda inp: torch.full((inp.shape[0], 1), -1.0, dtype=torch.float64)
    out = heldout_errors(const, [tmp_path / "shard-00000.npz"], n_rows=10_000)
    assert out["heldout_n_rows"] == 450
    assert out["heldout_mae"] == pytest.approx(float(np.abs(y[50:] + 1.0).mean()), rel=1e-6)
    # evaluate_lan reports the compared networks on the same held-out rows
    rep = evaluate_lan(
        const,
        "ddm",
        n_theta=2,
        n_trials=5,
        n_mass_theta=1,
        box=SHORT,
        compare={"other": OracleLAN()},
        heldout_shards=[tmp_path / "shard-00000.npz"],
    )
    assert rep["heldout_mae"] == pytest.approx(out["heldout_mae"], rel=1e-12)
    assert rep["other_heldout_n_rows"] == 450
    assert np.isfinite(rep["other_heldout_mae"]) and rep["other_heldout_mae"] != rep["heldout_mae"]
    sub = heldout_errors(const, [tmp_path / "shard-00000.npz"], n_rows=100, seed=1)
    assert sub["heldout_n_rows"] == 100
    with pytest.raises(ValueError, match="shards"):
        heldout_errors(const, [tmp_path / "shard-00000.npz"], label_min=10.0)


def test_evaluate_cpn_oracle_is_within_monte_carlo_noise():
    rep = evaluate_cpn(OracleCPN(), "ddm", n_theta=30, n_trials=1000, seed=4, box=SHORT)
    # E|freq - p| = sqrt(2/π)·SE for a normal error; allow sampling variation of the mean
    assert rep["mae"] < 1.5 * rep["mean_mc_se"] + 1e-3, rep
    assert rep["max_abs_error"] < 5 * 0.5 / math.sqrt(1000)
    wrong = evaluate_cpn(
        OracleCPN(), "ddm", n_theta=30, n_trials=1000, seed=4, choice_index=1, box=SHORT
    )
    assert wrong["mae"] > 5 * rep["mae"]  # scoring the other choice is detected


def test_evaluate_opn_oracle_is_within_monte_carlo_noise():
    rep = evaluate_opn(
        OracleOPN(), "ddm", n_theta=30, n_trials=1000, seed=5, box=SHORT, deadline_range=(0.0, 1.0)
    )
    assert rep["mae"] < 1.5 * rep["mean_mc_se"] + 1e-3, rep


def test_analytical_targets_match_the_likelihoods():
    theta = sample_box("ddm", 4, seed=0)
    x = torch.cat(
        [
            theta,
            torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.0, 1.0], [-0.5, 1.0]], dtype=torch.float64),
        ],
        dim=1,
    )
    y = analytical_targets("ddm", "lan", x)
    exact = ddm_log_likelihood(x[:, 4], x[:, 5], x[:, :4]).clamp_min(-66.77497)
    torch.testing.assert_close(y, exact)
    assert float(y[3]) <= -66.0  # negative rt: the likelihood's own floor (-66.1)
    p = analytical_targets("ddm", "cpn", theta)
    torch.testing.assert_close(p.sum(1), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="no analytical"):
        analytical_targets("angle", "lan", torch.zeros(1, 7))
    with pytest.raises(ValueError, match="shape"):
        analytical_targets("ddm", "lan", torch.zeros(1, 5))


def test_evaluate_network_dispatch_and_bad_kind():
    rep = evaluate_network(
        OracleLAN(), "ddm", "lan", n_theta=3, n_trials=5, n_mass_theta=1, box=SHORT
    )
    assert rep["mae"] < 1e-9
    with pytest.raises(ValueError, match="kind"):
        evaluate_network(OracleLAN(), "ddm", "xyz")
