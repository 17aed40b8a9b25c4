"""Optional label source "analytical": exact targets for models with a closed-form likelihood.

The default training targets are the generator's density-estimate labels (the KDE recipe of
Fengler et al. 2021, see docs/training_data.md). For models whose likelihood is known in
closed form (ddm, ddm_sdv, full_ddm, ...), the KDE's own noise and leading-edge bias bound
how accurate a network can get; with ``label_source: analytical`` the *same sampled rows* of
a shard folder are relabelled on the fly with the exact values:

- LAN: ``log p(rt, response | θ)`` from :func:`hssm_torch.likelihoods.log_likelihood`
  (raised to :data:`ANALYTICAL_LABEL_FLOOR`, the generator's label floor, where the exact
  value is lower; for ``rt <= t``, incl. the recipe's negative-rt rows, the likelihoods
  return their own floor -66.1);
- CPN: ``P(response = c | θ)`` for each choice (DDM closed form / quadrature over ``sv``);
- OPN: ``P(no response before the deadline | θ)`` (DDM survival series).

The rows (θ, rt, response, deadline) stay those written by the generator, so the data
distribution is unchanged; only the targets differ. The relabelling happens in
:meth:`AnalyticalLabelDataModule.on_after_batch_transfer`, i.e. on the training device, so
nothing is written to disk and the shards stay the generator's. This lives in ``training``
(not in ``simulators.training_data``) because the analytical likelihoods live in
``hssm_torch`` and ``simulators`` must not depend on it.

Example
-------
>>> import torch
>>> x = torch.tensor([[0.5, 1.0, 0.5, 0.3, 1.0, 1.0]])
>>> y = analytical_targets("ddm", "lan", x)
>>> bool(-3 < float(y[0]) < 0)
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from simulators import get_model
from training.datamodule import ShardDataModule

__all__ = [
    "ANALYTICAL_LABEL_FLOOR",
    "LABEL_SOURCES",
    "AnalyticalLabelDataModule",
    "analytical_log_likelihood",
    "analytical_models",
    "analytical_targets",
]

logger = logging.getLogger(__name__)

#: Label sources accepted by the training app (``data.label_source``).
LABEL_SOURCES: tuple[str, ...] = ("analytical", "kde")

#: Exact log-likelihoods below this are raised to it: the generator's ``lan.label_floor``
#: (log(1e-29), ssm-simulators' value), so both label sources share one floor.
ANALYTICAL_LABEL_FLOOR = -66.77497

_CHOICE_MODELS = ("ddm", "ddm_sdv")


def _lan_likelihoods() -> dict[str, Callable[..., torch.Tensor]]:
    """Model name -> ``f(rt, response, theta)`` for every analytical likelihood available."""
    try:
        from hssm_torch.likelihoods import list_likelihoods, log_likelihood
    except ImportError:  # the package's public entry point may be absent in a partial checkout
        from hssm_torch.likelihoods.full_ddm import full_ddm_log_likelihood
        from hssm_torch.likelihoods.wfpt import ddm_log_likelihood, ddm_sdv_log_likelihood

        return {
            "ddm": ddm_log_likelihood,
            "ddm_sdv": ddm_sdv_log_likelihood,
            "full_ddm": full_ddm_log_likelihood,
        }
    return {m: (lambda rt, r, th, _m=m: log_likelihood(_m, rt, r, th)) for m in list_likelihoods()}


def analytical_models(kind: str = "lan") -> list[str]:
    """Models for which ``label_source: analytical`` is available for network ``kind``.

    Example
    -------
    >>> "ddm" in analytical_models("cpn")
    True
    """
    if kind == "lan":
        return sorted(_lan_likelihoods())
    if kind in ("cpn", "opn"):
        return list(_CHOICE_MODELS)
    raise ValueError(f"kind: expected 'lan', 'cpn' or 'opn', got {kind!r}")


def analytical_targets(
    model: str, kind: str, x: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Exact targets for the network inputs ``x`` (rows as the shards' ``<kind>_inputs``).

    Parameters
    ----------
    model : str
        Registry model name.
    kind : str
        ``"lan"`` (returns ``(n,)`` log-likelihoods), ``"cpn"`` (``(n, n_choices)``
        probabilities in the model's choice order) or ``"opn"`` (``(n,)`` omission
        probabilities).
    x : torch.Tensor
        ``(n, P + 2)``, ``(n, P)`` or ``(n, P + 1)`` inputs (any float dtype, any device).
    dtype : torch.dtype, optional
        dtype of the result (default ``x.dtype``); computed in float64.

    Returns
    -------
    torch.Tensor
        On ``x``'s device.

    Example
    -------
    >>> import torch
    >>> p = analytical_targets("ddm", "cpn", torch.tensor([[0.0, 1.0, 0.5, 0.2]]))
    >>> [round(v, 6) for v in p[0].tolist()]
    [0.5, 0.5]
    """
    spec = get_model(model)
    if model not in analytical_models(kind):
        raise ValueError(
            f"model: no analytical {kind.upper()} labels for {model!r}; available: "
            f"{analytical_models(kind)} (use label_source: kde)"
        )
    n_p = len(spec.param_names)
    width = n_p + {"lan": 2, "cpn": 0, "opn": 1}[kind]
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(
            f"x: expected shape (n, {width}) for a {model} {kind.upper()}, got {tuple(x.shape)}"
        )
    out_dtype = dtype or x.dtype
    xd = x.to(torch.float64)
    theta = xd[:, :n_p]
    if kind == "lan":
        ll = _lan_likelihoods()[model](xd[:, n_p], xd[:, n_p + 1], theta)
        ll = torch.nan_to_num(ll, nan=ANALYTICAL_LABEL_FLOOR, neginf=ANALYTICAL_LABEL_FLOOR)
        return ll.clamp_min(ANALYTICAL_LABEL_FLOOR).to(out_dtype)
    from hssm_torch.likelihoods.ddm_extras import ddm_choice_probability, ddm_log_survival

    if kind == "cpn":
        cols = [
            ddm_choice_probability(theta, torch.full_like(theta[:, 0], float(c)))
            for c in spec.choices
        ]
        return torch.stack(cols, dim=1).clamp(0.0, 1.0).to(out_dtype)
    return ddm_log_survival(xd[:, n_p], theta).exp().clamp(0.0, 1.0).to(out_dtype)


class AnalyticalLabelDataModule(ShardDataModule):
    """:class:`~training.datamodule.ShardDataModule` whose targets are replaced by exact ones.

    Same arguments as ``ShardDataModule`` plus ``model`` (registry name). Each batch's
    targets are recomputed with :func:`analytical_targets` after it reached the device.

    Example
    -------
    >>> dm = AnalyticalLabelDataModule("data/ddm", kind="lan", model="ddm")  # doctest: +SKIP
    """

    def __init__(self, data_dir: Any, kind: str = "lan", *, model: str, **kwargs: Any) -> None:
        super().__init__(data_dir, kind=kind, **kwargs)
        if model not in analytical_models(kind):
            raise ValueError(
                f"data.label_source: 'analytical' is not available for {model!r} {kind.upper()}s; "
                f"available: {analytical_models(kind)}"
            )
        self.label_model = model

    def on_after_batch_transfer(
        self, batch: Sequence[torch.Tensor], dataloader_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return x, analytical_targets(self.label_model, self.kind, x, dtype=y.dtype)


def analytical_log_likelihood(
    model: str, rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor
) -> torch.Tensor:
    """The exact log-likelihood of a model with an analytical likelihood (not floored).

    Raises ``ValueError`` naming the available models when ``model`` has none.

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([[0.5, 1.0, 0.5, 0.3]], dtype=torch.float64)
    >>> analytical_log_likelihood("ddm", torch.tensor([1.0]), torch.tensor([1.0]), th).shape
    torch.Size([1])
    """
    fns = _lan_likelihoods()
    if model not in fns:
        raise ValueError(f"model: no analytical likelihood for {model!r}; available: {sorted(fns)}")
    return fns[model](rt, response, theta)
