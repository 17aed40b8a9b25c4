"""``simulate_data``: simulated trials as a pandas DataFrame (rt, response[, parameters]).

Example
-------
>>> from simulators.data import simulate_data
>>> df = simulate_data("ddm", {"v": 0.5, "a": 1.0, "z": 0.5, "t": 0.3}, 5, seed=0)
>>> list(df.columns), len(df)
(['rt', 'response'], 5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from simulators.registry import get_model
from simulators.simulate import parse_theta, simulate

if TYPE_CHECKING:  # pandas is imported when simulate_data runs, not with the package
    import pandas as pd

__all__ = ["simulate_data"]


def simulate_data(model, theta, size: int, seed: int | None = None, **kwargs) -> pd.DataFrame:
    """Simulate ``size`` trials and return them as a DataFrame.

    Parameters
    ----------
    model:
        Registry name or ModelSpec.
    theta:
        One parameter set (dict of floats, or a ``(P,)``/``(1, P)`` tensor): ``size`` trials
        from it, columns ``rt``, ``response``.  Or trial-wise parameters (dict of length-``size``
        1-D tensors/arrays, or a ``(size, P)`` tensor): one trial per row, and the parameter
        columns are included after ``rt`` and ``response``.
    size:
        Number of trials (rows).
    seed:
        Passed to :func:`simulators.simulate.simulate` (``None``: a fresh one).
    **kwargs:
        Other keyword arguments of :func:`~simulators.simulate.simulate` (dt, max_t, method,
        device, dtype, chunk_size, allow_out_of_bounds).

    Returns
    -------
    pandas.DataFrame
        ``rt`` (float64 seconds; -999.0 for omitted trials) and ``response`` (int64; -999 for
        omitted trials); ``df.attrs`` holds the model name, seed, dt, max_t, method and the
        number of omitted trials.

    Example
    -------
    >>> import numpy as np
    >>> v = np.linspace(-1, 1, 4)
    >>> df = simulate_data("ddm", {"v": v, "a": 1.0, "z": 0.5, "t": 0.3}, 4, seed=1)
    >>> list(df.columns)
    ['rt', 'response', 'v', 'a', 'z', 't']
    """
    import pandas as pd

    spec = get_model(model)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected an integer >= 1, got {size!r}")
    size = int(size)
    mat = parse_theta(
        spec,
        theta,
        dtype=kwargs.get("dtype", torch.float32),
        device=kwargs.get("device"),
        allow_out_of_bounds=kwargs.get("allow_out_of_bounds", False),
    )
    b = mat.shape[0]
    if b == 1:
        res = simulate(spec, mat, size, seed=seed, **kwargs)
        rt, resp = res.rt[0], res.response[0]
        df = pd.DataFrame({"rt": rt.double().cpu().numpy(), "response": resp.cpu().numpy()})
    elif b == size:
        res = simulate(spec, mat, 1, seed=seed, **kwargs)
        df = pd.DataFrame(
            {
                "rt": res.rt[:, 0].double().cpu().numpy(),
                "response": res.response[:, 0].cpu().numpy(),
            }
        )
        values = res.theta.double().cpu().numpy()
        for i, name in enumerate(spec.param_names):
            df[name] = values[:, i]
    else:
        raise ValueError(
            f"theta: expected one parameter set or {size} (one per trial, size={size}), got {b}"
        )
    df.attrs.update(
        model=spec.name,
        seed=res.seed,
        dt=res.dt,
        max_t=res.max_t,
        method=res.method,
        n_omitted=res.n_omitted,
    )
    return df
