"""Helpers for the plot tests: small hand-built InferenceData in HSSM's layout."""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    # arviz 0.23 announces its 1.0 refactor with a FutureWarning on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

DIMS = {"rt,response": ["__obs__", "rt,response_dim"]}


def fake_trials(rng: np.random.Generator, shape, choices=(-1, 1), p=None) -> np.ndarray:
    """``shape + (2,)`` array of (rt, response): shifted-gamma RTs, random responses."""
    rt = 0.3 + rng.gamma(2.0, 0.2, shape)
    resp = rng.choice(np.asarray(choices), size=shape, p=p)
    return np.stack([rt, resp.astype(float)], axis=-1)


def make_idata(observed: np.ndarray, predicted: np.ndarray, group="posterior_predictive"):
    """InferenceData in HSSM's layout from (N, 2) observed and (C, D, N, 2) predicted arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return az.from_dict(
            **{group: {"rt,response": predicted}},
            observed_data={"rt,response": observed},
            dims=DIMS,
        )
