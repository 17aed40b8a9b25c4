"""LAN, CPN and OPN training targets from simulated (rt, response) data.

LAN rows follow the published recipe (Fengler et al. 2021, eLife 10:e65074; ssm-simulators'
``lan_mlp`` generator): per parameter set, ``n_training_rows`` rows ``[θ, rt, response]``:

- a share ``mixture[0]`` of points drawn from the KDE itself (response with its simulated
  share among responded trials, RT from that response's log-RT KDE),
- ``mixture[1]`` points with a response drawn uniformly from the model's choices and
  ``rt ~ Uniform(1e-4, uniform_rt_max)`` (default: the simulation's ``max_t``),
- ``mixture[2]`` points with a uniform response and ``rt ~ Uniform(-1, 0)``,

labelled with ``log p(rt, response | θ)`` from :class:`~simulators.training_data.kde.LogRTKDE`;
negative RTs get ``negative_rt_label`` (default ``-66.77497 = log(1e-29)``, as
ssm-simulators). Labels below ``label_floor`` (default the same value) are raised to it and
counted (``n_floored``) -- far tails of the KDE give labels of -1000 and less, which carry no
information a network can use.

CPN targets are the responded trials' choice shares ``n_c / n_responded`` (in the model's
choice order). OPN targets: one deadline per θ (``deadline_distribution`` on
``[deadline_low, deadline_high]``) and the share of trials with no response before it,
``P(rt > deadline or omitted)``.

Example
-------
>>> import torch
>>> rt = torch.rand(2, 1000) + 0.3
>>> resp = torch.where(torch.rand(2, 1000) < 0.5, -1, 1)
>>> om = torch.zeros(2, 1000, dtype=torch.bool)
>>> cpn_targets(resp, om, (-1, 1)).shape
torch.Size([2, 2])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from simulators.training_data.kde import LogRTKDE

__all__ = [
    "DEADLINE_DISTRIBUTIONS",
    "LANRecipe",
    "OPNRecipe",
    "cpn_targets",
    "lan_rows",
    "opn_targets",
]

#: Supported deadline distributions for OPN targets.
DEADLINE_DISTRIBUTIONS = ("log_uniform", "uniform")

NEGATIVE_RT_LABEL = math.log(1e-29)


@dataclass(frozen=True)
class LANRecipe:
    """How LAN rows are built (see the module docstring).

    Example
    -------
    >>> LANRecipe(mixture=(0.6, 0.3, 0.1)).counts(100)
    (60, 30, 10)
    """

    mixture: tuple[float, float, float] = (0.8, 0.1, 0.1)
    negative_rt_label: float = NEGATIVE_RT_LABEL
    label_floor: float = NEGATIVE_RT_LABEL
    uniform_rt_max: float | None = None
    grid_size: int = 4096

    def __post_init__(self) -> None:
        mix = tuple(float(p) for p in self.mixture)
        if (
            len(mix) != 3
            or any(p < 0 for p in mix)
            or not math.isclose(sum(mix), 1.0, abs_tol=1e-6)
        ):
            raise ValueError(
                "lan.mixture: expected three non-negative shares (kde, uniform rt, negative rt) "
                f"summing to 1, got {list(self.mixture)}"
            )
        object.__setattr__(self, "mixture", mix)
        if self.uniform_rt_max is not None and self.uniform_rt_max <= 1e-4:
            raise ValueError(
                f"lan.uniform_rt_max: expected a value > 1e-4 (or null), got {self.uniform_rt_max}"
            )

    def counts(self, n_rows: int) -> tuple[int, int, int]:
        """Rows per part ``(kde, uniform, negative)``; they add up to ``n_rows``."""
        n_kde = round(n_rows * self.mixture[0])
        n_unif = min(round(n_rows * self.mixture[1]), n_rows - n_kde)
        return n_kde, n_unif, n_rows - n_kde - n_unif


@dataclass(frozen=True)
class OPNRecipe:
    """How OPN deadlines are drawn: one per θ from ``distribution`` on ``[low, high]``.

    Example
    -------
    >>> OPNRecipe().distribution
    'log_uniform'
    """

    deadline_low: float = 0.1
    deadline_high: float = 10.0
    distribution: str = "log_uniform"

    def __post_init__(self) -> None:
        if self.distribution not in DEADLINE_DISTRIBUTIONS:
            raise ValueError(
                f"opn.distribution: expected one of {list(DEADLINE_DISTRIBUTIONS)}, got "
                f"{self.distribution!r}"
            )
        lo, hi = self.deadline_low, self.deadline_high
        if not (0 <= lo < hi) or (self.distribution == "log_uniform" and lo <= 0):
            raise ValueError(
                f"opn.deadline_low/deadline_high: expected 0 <= low < high (low > 0 for "
                f"log_uniform), got [{lo}, {hi}]"
            )

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """``n`` deadlines (float64)."""
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        if self.distribution == "uniform":
            return self.deadline_low + u * (self.deadline_high - self.deadline_low)
        lo, hi = math.log(self.deadline_low), math.log(self.deadline_high)
        return torch.exp(lo + u * (hi - lo))


def cpn_targets(
    response: torch.Tensor, omitted: torch.Tensor, choices: Sequence[int]
) -> torch.Tensor:
    """Choice shares among responded trials, ``(B, n_choices)`` float64 in ``choices`` order.

    Rows without any responded trial give NaN (the filters reject those first).
    """
    responded = ~omitted.to(torch.bool)
    counts = torch.stack([((response == c) & responded).sum(1) for c in choices], 1)
    counts = counts.to(torch.float64)
    return counts / counts.sum(1, keepdim=True)


def opn_targets(rt: torch.Tensor, omitted: torch.Tensor, deadline: torch.Tensor) -> torch.Tensor:
    """``P(rt > deadline or omitted)`` per row, estimated from all simulated trials (``(B,)``).

    Example
    -------
    >>> opn_targets(torch.tensor([[0.5, 1.5, -999.0]]), torch.tensor([[False, False, True]]),
    ...             torch.tensor([1.0])).tolist()
    [0.6666666666666666]
    """
    late = omitted.to(torch.bool) | (rt.to(torch.float64) > deadline.unsqueeze(1))
    return late.to(torch.float64).mean(1)


def lan_rows(
    rt: torch.Tensor,
    response: torch.Tensor,
    omitted: torch.Tensor,
    choices: Sequence[int],
    n_rows: int,
    *,
    max_t: float,
    recipe: LANRecipe | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """LAN rows for a batch of simulated data sets.

    Returns
    -------
    rt_points, response_codes, labels:
        ``(B, n_rows)`` float64, int64 (response codes), float64 (log densities).
    n_floored:
        How many labels were raised to ``recipe.label_floor``.

    Example
    -------
    >>> rt = torch.rand(1, 2000) + 0.3
    >>> resp = torch.where(torch.rand(1, 2000) < 0.5, -1, 1)
    >>> pts, codes, lab, nf = lan_rows(rt, resp, torch.zeros(1, 2000, dtype=torch.bool),
    ...                                (-1, 1), 10, max_t=20.0)
    >>> pts.shape, bool(torch.isfinite(lab).all())
    (torch.Size([1, 10]), True)
    """
    recipe = recipe or LANRecipe()
    device = rt.device
    B = rt.shape[0]
    C = len(choices)
    n_kde, n_unif, n_neg = recipe.counts(n_rows)
    kde = LogRTKDE(rt, response, choices, omitted, grid_size=recipe.grid_size)
    r_kde, c_kde = kde.sample(n_kde, generator)
    hi = recipe.uniform_rt_max if recipe.uniform_rt_max is not None else max_t
    r_unif = 1e-4 + torch.rand(
        B, n_unif, generator=generator, device=device, dtype=torch.float64
    ) * (hi - 1e-4)
    c_unif = torch.randint(0, C, (B, n_unif), generator=generator, device=device)
    pos_rt = torch.cat([r_kde, r_unif], 1)
    pos_c = torch.cat([c_kde, c_unif], 1)
    lab = kde.log_density(pos_rt, pos_c)
    r_neg = -torch.rand(B, n_neg, generator=generator, device=device, dtype=torch.float64)
    r_neg = torch.where(r_neg == 0, torch.full_like(r_neg, -1.0), r_neg)  # strictly negative
    c_neg = torch.randint(0, C, (B, n_neg), generator=generator, device=device)
    labels = torch.cat([lab, torch.full_like(r_neg, recipe.negative_rt_label)], 1)
    floored = labels < recipe.label_floor
    labels = torch.where(floored, torch.full_like(labels, recipe.label_floor), labels)
    codes = torch.tensor(list(choices), device=device, dtype=torch.int64)
    idx = torch.cat([pos_c, c_neg], 1)
    return torch.cat([pos_rt, r_neg], 1), codes[idx], labels, int(floored.sum())
