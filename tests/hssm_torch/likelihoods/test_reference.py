"""Analytical likelihoods against the shared reference files (read in place)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hssm_torch.likelihoods import log_likelihood

pytestmark = pytest.mark.reference


@pytest.mark.parametrize("model", ["ddm", "ddm_sdv"])
def test_ddm_matches_50_digit_reference(reference_dir, model):
    """loglik_exact (mpmath, 50 digits): 1e-8 absolute above -100, 1e-8 relative below."""
    d = pd.read_csv(reference_dir / "ddm_loglik_ref.csv")
    d = d[d.model == model]
    cols = ["v", "a", "z", "t"] + (["sv"] if model == "ddm_sdv" else [])
    theta = torch.tensor(d[cols].to_numpy(), dtype=torch.float64)
    out = log_likelihood(
        model,
        torch.tensor(d.rt.to_numpy(), dtype=torch.float64),
        torch.tensor(d.response.to_numpy()),
        theta,
        validate=True,
    ).numpy()
    ref = d.loglik_exact.to_numpy()
    assert len(ref) > 1000 and ref.min() < -500  # the file reaches deep into the tails
    high = ref > -100
    assert np.abs(out[high] - ref[high]).max() < 1e-8
    assert (np.abs(out[~high] - ref[~high]) / np.abs(ref[~high])).max() < 1e-8


def test_lba2_matches_hssm_where_unclipped(reference_dir):
    """HSSM's LBA values (not clipped at +-66.1). HSSM computes the survival as 1 - F, which
    cancels in the tails, so it is trusted to 1e-5 only where its log-likelihood is > -15;
    deeper rows are checked against a 50-digit evaluation of the same formulas."""
    d = pd.read_csv(reference_dir / "lba2_loglik_ref.csv")
    unclipped = d.loglik.abs() < 66.1 - 1e-9
    d = d[unclipped]
    theta = torch.tensor(d[["A", "b", "v0", "v1"]].to_numpy(), dtype=torch.float64)
    out = log_likelihood(
        "lba2",
        torch.tensor(d.rt.to_numpy(), dtype=torch.float64),
        torch.tensor(d.response.to_numpy()),
        theta,
        validate=True,
    ).numpy()
    ref = d.loglik.to_numpy()
    trusted = ref > -15
    assert trusted.sum() > 700
    assert np.abs(out[trusted] - ref[trusted]).max() < 1e-5

    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    s = mp.mpf("0.1")

    def exact(rt, resp, A, b, vs):
        rt, A, b = mp.mpf(rt), mp.mpf(A), mp.mpf(b)

        def pdf(v):
            v = mp.mpf(v)
            g, h = (b - A - rt * v) / (rt * s), (b - rt * v) / (rt * s)
            return (-v * mp.ncdf(g) + s * mp.npdf(g) + v * mp.ncdf(h) - s * mp.npdf(h)) / A

        def cdf(v):
            v = mp.mpf(v)
            g, h = (b - A - rt * v) / (rt * s), (b - rt * v) / (rt * s)
            return (
                1
                + (b - A - rt * v) / A * mp.ncdf(g)
                - (b - rt * v) / A * mp.ncdf(h)
                + rt * s / A * (mp.npdf(g) - mp.npdf(h))
            )

        like = pdf(vs[resp]) * (1 - cdf(vs[1 - resp]))
        return float(mp.log(like / (1 - mp.ncdf(-mp.mpf(vs[0]) / s) * mp.ncdf(-mp.mpf(vs[1]) / s))))

    deep = np.flatnonzero(~trusted)[:40]
    assert len(deep) > 20
    for i in deep:
        r = d.iloc[i]
        assert out[i] == pytest.approx(
            exact(r.rt, int(r.response), r.A, r.b, [r.v0, r.v1]), abs=1e-9, rel=1e-10
        )
