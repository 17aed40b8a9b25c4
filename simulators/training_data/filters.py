"""Degenerate-θ filters: which simulated parameter sets are unfit for KDE labels.

Policy (documented in docs/training_data.md; counts go to each shard's record and the
manifest, nothing is dropped silently). A parameter set is *rejected* when

- ``omitted``: more than ``max_omitted_fraction`` of its trials gave no response by
  ``max_t`` (the KDE and the choice probabilities would describe a truncated process);
- ``few_trials``: some response has fewer than ``min_trials_per_choice`` trials (with the
  default 1: one response only, as ssm-simulators' ``choice_cnt > 0`` filter);
- ``point_mass``: some response with at least two trials has an RT standard deviation
  ``<= min_rt_std`` (all RTs identical: no density to estimate).

Rejected parameter sets are replaced by further draws from the shard's own θ stream.

Example
-------
>>> import torch
>>> rt = torch.rand(2, 100) + 0.3
>>> resp = torch.ones(2, 100, dtype=torch.long); resp[0, :50] = -1
>>> f = FilterPolicy()
>>> reasons = f.evaluate(rt, resp, torch.zeros(2, 100, dtype=torch.bool), (-1, 1))
>>> f.keep(reasons).tolist()
[True, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["FILTER_REASONS", "FilterPolicy"]

#: Rejection reasons, in the order they are reported.
FILTER_REASONS = ("omitted", "few_trials", "point_mass")


@dataclass(frozen=True)
class FilterPolicy:
    """Thresholds of the degenerate-θ filters (see the module docstring).

    Example
    -------
    >>> FilterPolicy(max_omitted_fraction=0.1).max_omitted_fraction
    0.1
    """

    max_omitted_fraction: float = 0.05
    min_trials_per_choice: int = 1
    min_rt_std: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_omitted_fraction <= 1.0:
            raise ValueError(
                f"filters.max_omitted_fraction: expected a value in [0, 1], got "
                f"{self.max_omitted_fraction}"
            )
        if self.min_trials_per_choice < 0:
            raise ValueError(
                f"filters.min_trials_per_choice: expected an integer >= 0, got "
                f"{self.min_trials_per_choice}"
            )
        if self.min_rt_std < 0:
            raise ValueError(f"filters.min_rt_std: expected a value >= 0, got {self.min_rt_std}")

    def evaluate(
        self,
        rt: torch.Tensor,
        response: torch.Tensor,
        omitted: torch.Tensor,
        choices: Sequence[int],
    ) -> dict[str, torch.Tensor]:
        """Per-row bool tensors ``{reason: failed}`` for every reason in :data:`FILTER_REASONS`."""
        omitted = omitted.to(torch.bool)
        om_frac = omitted.to(torch.float64).mean(1)
        few = torch.zeros(rt.shape[0], dtype=torch.bool, device=rt.device)
        point = torch.zeros_like(few)
        r = rt.to(torch.float64)
        for c in choices:
            m = (response == c) & ~omitted
            k = m.sum(1)
            few |= k < self.min_trials_per_choice
            kf = k.to(torch.float64).clamp_min(1)
            mean = torch.where(m, r, 0.0).sum(1) / kf
            var = torch.where(m, (r - mean.unsqueeze(1)) ** 2, 0.0).sum(1) / kf
            point |= (k >= 2) & (var.sqrt() <= self.min_rt_std)
        return {
            "omitted": om_frac > self.max_omitted_fraction,
            "few_trials": few,
            "point_mass": point,
        }

    @staticmethod
    def keep(reasons: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows that fail no filter."""
        failed = torch.zeros_like(next(iter(reasons.values())))
        for v in reasons.values():
            failed = failed | v
        return ~failed
