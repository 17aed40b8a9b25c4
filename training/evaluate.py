"""Accuracy reports for trained networks (LAN, CPN, OPN).

- **LAN**, model with an analytical likelihood: absolute log-likelihood error against it at
  *data-like* points (RTs simulated from the model at θ drawn from the training box): mean,
  95th percentile and max; plus the **probability mass** of the network's density
  (∫ exp(net) d rt, summed over responses) for a sample of θ.
- **LAN**, other models: the mass check, and the error against held-out density-estimate
  labels (``heldout_*``) when held-out shards are given (the training app passes its
  validation shards).
- **CPN**: the network's P(choice) against choice frequencies of simulations at the same θ.
- **OPN**: the network's P(omission) against the simulated frequency of rt > deadline.

Every report is a plain ``dict`` of floats (JSON-ready, written into the network's sidecar).

Example
-------
>>> from hssm_torch.onnx_loader import load_onnx
>>> net = load_onnx("ddm_lan.onnx")                          # doctest: +SKIP
>>> evaluate_lan(net, "ddm", n_theta=100, seed=0)["mae"]     # doctest: +SKIP
0.03
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from simulators import get_model

__all__ = [
    "data_like_points",
    "density_mass",
    "evaluate_cpn",
    "evaluate_lan",
    "evaluate_network",
    "evaluate_opn",
    "heldout_errors",
    "sample_box",
]

logger = logging.getLogger(__name__)

#: Held-out LAN rows with labels at or below this are left out of the error: log(1e-7),
#: the LAN training floor (``LANModule.target_floor``).
DEFAULT_LABEL_MIN = -16.11809565095832


def _box(
    model: str, box: Mapping[str, Sequence[float]] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    spec = get_model(model)
    lo = torch.tensor([p.lower for p in spec.params], dtype=torch.float64)
    hi = torch.tensor([p.upper for p in spec.params], dtype=torch.float64)
    for name, (a, b) in dict(box or {}).items():
        i = spec.index(name)
        lo[i], hi[i] = float(a), float(b)
    return lo, hi


def sample_box(
    model: str, n: int, *, box: Mapping[str, Sequence[float]] | None = None, seed: int = 0
) -> torch.Tensor:
    """``n`` parameter sets drawn uniformly from the training box (registry order).

    Returned as float64 holding float32-representable values inside the box, so that the
    simulations (float32), the networks (float32) and the analytical likelihood (float64)
    all see the same θ.

    Example
    -------
    >>> sample_box("ddm", 3, seed=1).shape
    torch.Size([3, 4])
    """
    lo, hi = _box(model, box)
    g = torch.Generator().manual_seed(seed)
    theta = lo + (hi - lo) * torch.rand(n, lo.numel(), generator=g, dtype=torch.float64)
    # float32-representable (networks and simulators run in float32), kept inside the box
    t32 = theta.float()
    lo32, hi32 = lo.float(), hi.float()
    t32 = torch.where(t32.double() < lo, torch.nextafter(lo32, hi32).expand_as(t32), t32)
    t32 = torch.where(t32.double() > hi, torch.nextafter(hi32, lo32).expand_as(t32), t32)
    return t32.double()


def data_like_points(
    model: str, theta: torch.Tensor, n_trials: int, *, seed: int = 0, max_t: float = 20.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Simulate ``n_trials`` per θ; returns ``(theta_rows, rt, response)`` of decided trials.

    Trials without a decision by ``max_t`` are left out (their count is logged).

    Example
    -------
    >>> th = sample_box("ddm", 2)
    >>> rows, rt, resp = data_like_points("ddm", th, 10)
    >>> rows.shape[1], rt.shape == resp.shape
    (4, True)
    """
    from simulators.simulate import simulate

    res = simulate(model, theta.float(), n_trials, seed=seed, max_t=max_t)
    keep = ~res.omitted
    n_omitted = int((~keep).sum())
    if n_omitted:
        logger.info("data_like_points: %d of %d trials undecided by max_t", n_omitted, keep.numel())
    rows = theta.unsqueeze(1).expand(-1, n_trials, -1)[keep]
    return (
        rows.to(torch.float64),
        res.rt[keep].to(torch.float64),
        res.response[keep].to(torch.float64),
    )


def _net_dtype_device(net: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    """dtype and device of a network's weights (parameters, else buffers; default float32/CPU)."""
    param = next(iter(net.parameters()), None)
    buf = next(iter(net.buffers()), None)
    ref = param if param is not None else buf
    if ref is None:
        return torch.float32, torch.device("cpu")
    return ref.dtype, ref.device


def _net_eval(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    dtype, device = _net_dtype_device(net)
    with torch.no_grad():
        return net(x.to(device=device, dtype=dtype)).reshape(-1).to(torch.float64).cpu()


def _net_loglik(
    net: torch.nn.Module,
    rows: torch.Tensor,
    rt: torch.Tensor,
    resp: torch.Tensor,
    batch: int = 200_000,
) -> torch.Tensor:
    dtype, device = _net_dtype_device(net)
    x = torch.cat([rows, rt[:, None], resp[:, None]], dim=1).to(device=device, dtype=dtype)
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out.append(net(x[i : i + batch]).reshape(-1))
    return torch.cat(out).to(torch.float64).cpu()


def _summary(err: torch.Tensor, prefix: str = "") -> dict[str, float]:
    err = err.abs()
    return {
        f"{prefix}mae": float(err.mean()),
        f"{prefix}p95_abs_error": float(torch.quantile(err, 0.95)),
        f"{prefix}max_abs_error": float(err.max()),
    }


def density_mass(
    net: torch.nn.Module,
    model: str,
    theta: torch.Tensor,
    *,
    rt_max: float = 20.0,
    n_grid: int = 4000,
) -> torch.Tensor:
    """∫ exp(net(θ, rt, response)) d rt summed over responses, for each row of ``theta``.

    The rt grid is log-spaced from ``t + 1e-5`` to ``t + rt_max`` (trapezoid rule), so the
    sharp rise just after the non-decision time is resolved.

    Example
    -------
    >>> masses = density_mass(net, "ddm", sample_box("ddm", 5))   # doctest: +SKIP
    """
    spec = get_model(model)
    t_idx = spec.index("t") if "t" in spec.param_names else None
    offsets = torch.logspace(-5, np.log10(rt_max), n_grid, dtype=torch.float64)
    masses = []
    for th in theta.to(torch.float64):
        t0 = float(th[t_idx]) if t_idx is not None else 0.0
        rt = t0 + offsets
        total = 0.0
        for c in spec.choices:
            rows = th.expand(n_grid, -1)
            resp = torch.full((n_grid,), float(c), dtype=torch.float64)
            dens = _net_loglik(net, rows, rt, resp).exp()
            total += float(torch.trapezoid(dens, rt))
        masses.append(total)
    return torch.tensor(masses, dtype=torch.float64)


def heldout_errors(
    net: torch.nn.Module,
    shards: Sequence[str | Path],
    *,
    n_rows: int = 100_000,
    label_min: float = DEFAULT_LABEL_MIN,
    seed: int = 0,
) -> dict[str, float]:
    """Error of a LAN against held-out density-estimate labels (``lan_targets`` of shards).

    Up to ``n_rows`` rows are drawn (seeded, without replacement) from the shards' rows whose
    label is above ``label_min`` (default log(1e-7), the LAN training floor: below it the
    network is trained to a constant, and the recipe's negative-rt rows carry a constant
    label). The figures include the labels' own noise (a KDE of finite simulations), so they
    bound the network's error from above only loosely; use the analytical comparison where
    one exists.

    Example
    -------
    >>> heldout_errors(net, ["data/angle/shard-00009.npz"])["heldout_mae"]   # doctest: +SKIP
    """
    from training.datamodule import open_npz_member

    xs, ys = [], []
    for path in shards:
        x = np.asarray(open_npz_member(path, "lan_inputs"))
        y = np.asarray(open_npz_member(path, "lan_targets"))
        keep = y > label_min
        xs.append(x[keep])
        ys.append(y[keep])
    if not xs or sum(len(y) for y in ys) == 0:
        raise ValueError(
            f"shards: no held-out LAN rows with labels above {label_min} in {list(shards)}"
        )
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    rng = np.random.default_rng(seed)
    if len(y) > n_rows:
        idx = np.sort(rng.choice(len(y), n_rows, replace=False))
        x, y = x[idx], y[idx]
    xt = torch.as_tensor(x, dtype=torch.float64)
    pred = _net_loglik(net, xt[:, :-2], xt[:, -2], xt[:, -1])
    out = _summary(pred - torch.as_tensor(y, dtype=torch.float64), "heldout_")
    out["heldout_n_rows"] = int(len(y))
    return out


def evaluate_lan(
    net: torch.nn.Module,
    model: str,
    *,
    n_theta: int = 200,
    n_trials: int = 100,
    n_mass_theta: int = 20,
    box: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    compare: Mapping[str, torch.nn.Module] | None = None,
    heldout_shards: Sequence[str | Path] | None = None,
    n_heldout_rows: int = 100_000,
) -> dict[str, float]:
    """Accuracy report of a LAN (see the module docstring).

    Parameters
    ----------
    net : torch.nn.Module
        ``(N, P + 2) -> (N, 1)`` log-likelihood network.
    model : str
        Registry model name (input order = registry order).
    n_theta, n_trials : int
        Data-like points: ``n_trials`` simulated trials at each of ``n_theta`` θ drawn
        uniformly from ``box`` (only models with an analytical likelihood).
    n_mass_theta : int
        θ (another draw) at which the density mass is integrated.
    box : mapping, optional
        Narrower per-parameter bounds (default: the registry's training box).
    compare : mapping, optional
        Other networks (e.g. HSSM's ``ddm_lan.onnx``) evaluated on the same points, θ and
        held-out rows; their figures carry the name as prefix (``hssm_mae``,
        ``hssm_mass_mean``, ``hssm_heldout_mae``, ...).
    heldout_shards : sequence of paths, optional
        Shards not used for training: adds ``heldout_*`` errors against their
        density-estimate labels (see :func:`heldout_errors`).
    n_heldout_rows : int
        Rows used from the held-out shards.

    Returns
    -------
    dict
        ``mae``, ``p95_abs_error``, ``max_abs_error`` (analytical models), ``mass_mean``,
        ``mass_min``, ``mass_max``, ``mass_max_abs_dev``, ``heldout_*`` and the counts.

    Example
    -------
    >>> report = evaluate_lan(net, "ddm", n_theta=50)   # doctest: +SKIP
    >>> sorted(report)[:3]                              # doctest: +SKIP
    ['mae', 'mass_max', 'mass_max_abs_dev']
    """
    from training.analytical_labels import analytical_log_likelihood, analytical_models

    nets = {"": net, **{f"{k}_": v for k, v in dict(compare or {}).items()}}
    report: dict[str, float] = {}
    if model in analytical_models("lan"):
        theta = sample_box(model, n_theta, box=box, seed=seed)
        rows, rt, resp = data_like_points(model, theta, n_trials, seed=seed)
        report.update({"n_theta": n_theta, "n_points": int(rt.numel())})
        truth = analytical_log_likelihood(model, rt, resp, rows).to(torch.float64)
        for prefix, m in nets.items():
            report.update(_summary(_net_loglik(m, rows, rt, resp) - truth, prefix))
    mass_theta = sample_box(model, n_mass_theta, box=box, seed=seed + 1)
    report["n_mass_theta"] = n_mass_theta
    for prefix, m in nets.items():
        masses = density_mass(m, model, mass_theta)
        report[f"{prefix}mass_mean"] = float(masses.mean())
        report[f"{prefix}mass_min"] = float(masses.min())
        report[f"{prefix}mass_max"] = float(masses.max())
        report[f"{prefix}mass_max_abs_dev"] = float((masses - 1).abs().max())
    if heldout_shards:  # the same held-out rows (same seed) for every network
        for prefix, m in nets.items():
            ho = heldout_errors(m, heldout_shards, n_rows=n_heldout_rows, seed=seed)
            report.update({f"{prefix}{k}": v for k, v in ho.items()})
    return report


def _calibration(
    p: torch.Tensor, freq: torch.Tensor, n_theta: int, n_trials: int
) -> dict[str, float]:
    """Network probabilities ``p`` against simulated frequencies ``freq`` (per θ)."""
    se = (freq * (1 - freq) / n_trials).sqrt()
    diff = (p - freq).abs()
    return {
        "mae": float(diff.mean()),
        "max_abs_error": float(diff.max()),
        "mean_mc_se": float(se.mean()),
        "n_theta": n_theta,
        "n_trials": n_trials,
    }


def evaluate_cpn(
    net: torch.nn.Module,
    model: str,
    *,
    n_theta: int = 200,
    n_trials: int = 2000,
    choice_index: int = 0,
    box: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """CPN calibration: network P(choice) against simulated choice frequencies.

    Reports the mean and max absolute difference and the mean Monte-Carlo standard error of
    the frequencies (so the difference can be read against simulation noise).

    Example
    -------
    >>> evaluate_cpn(cpn, "ddm", n_theta=50)["mae"]   # doctest: +SKIP
    """
    from simulators.simulate import simulate

    spec = get_model(model)
    theta = sample_box(model, n_theta, box=box, seed=seed)
    res = simulate(model, theta.float(), n_trials, seed=seed)
    code = spec.choices[choice_index]
    freq = (res.response == code).to(torch.float64).mean(dim=1)
    p = _net_eval(net, theta).exp()
    return _calibration(p, freq, n_theta, n_trials)


def evaluate_opn(
    net: torch.nn.Module,
    model: str,
    *,
    n_theta: int = 200,
    n_trials: int = 2000,
    deadline_range: tuple[float, float] = (0.0, 5.0),
    box: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """OPN calibration: network P(rt > deadline) against simulated frequencies.

    Deadlines are drawn uniformly from ``t + deadline_range`` for each θ.

    Example
    -------
    >>> evaluate_opn(opn, "ddm", n_theta=50)["mae"]   # doctest: +SKIP
    """
    from simulators.simulate import simulate

    spec = get_model(model)
    theta = sample_box(model, n_theta, box=box, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    lo, hi = deadline_range
    t0 = (
        theta[:, spec.index("t")]
        if "t" in spec.param_names
        else torch.zeros(n_theta, dtype=torch.float64)
    )
    deadline = t0 + lo + (hi - lo) * torch.rand(n_theta, generator=g, dtype=torch.float64)
    res = simulate(model, theta.float(), n_trials, seed=seed)
    late = res.omitted | (res.rt.to(torch.float64) > deadline[:, None])
    freq = late.to(torch.float64).mean(dim=1)
    p = _net_eval(net, torch.cat([theta, deadline[:, None]], dim=1)).exp()
    return _calibration(p, freq, n_theta, n_trials)


def evaluate_network(
    path_or_net: str | Path | torch.nn.Module, model: str, kind: str = "lan", **kwargs
) -> dict[str, float]:
    """Dispatch to :func:`evaluate_lan`, :func:`evaluate_cpn` or :func:`evaluate_opn`.

    ``path_or_net`` may be an ONNX file (loaded with :func:`hssm_torch.load_onnx`).

    Example
    -------
    >>> evaluate_network("ddm_lan.onnx", "ddm", "lan")   # doctest: +SKIP
    """
    if isinstance(path_or_net, (str, Path)):
        from hssm_torch.onnx_loader import load_onnx

        net = load_onnx(path_or_net)
    else:
        net = path_or_net
    fns = {"lan": evaluate_lan, "cpn": evaluate_cpn, "opn": evaluate_opn}
    if kind not in fns:
        raise ValueError(f"kind: expected one of {sorted(fns)}, got {kind!r}")
    return fns[kind](net, model, **kwargs)
