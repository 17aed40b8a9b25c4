"""Warm-up adaptation for NUTS, per chain: dual-averaging step size and a windowed diagonal
mass matrix (Stan's schedule).

* :class:`DualAveraging` -- Nesterov dual averaging of ``log(step_size)`` towards a target
  mean acceptance statistic (Hoffman & Gelman 2014, section 3.2; Stan's constants
  ``gamma=0.05, t0=10, kappa=0.75``, ``mu = log(10 * step_size)``), vectorized over chains.
* :class:`WelfordVariance` -- running per-chain, per-coordinate variance of the draws.
* :func:`mass_windows` -- Stan's warm-up schedule: an initial fast interval (75 iterations),
  slow windows of 25, 50, 100, ... iterations after each of which the diagonal inverse mass
  matrix is set to the regularised variance of the window's draws, and a terminal fast
  interval (50); scaled to 15% / 75% / 10% of ``tune`` when ``tune < 150``.

Example
-------
>>> mass_windows(1000)
[(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
>>> mass_windows(100)
[(15, 90)]
"""

from __future__ import annotations

import math

import torch

__all__ = ["DualAveraging", "WelfordVariance", "mass_windows", "regularised_variance"]


def mass_windows(
    tune: int, init_buffer: int = 75, term_buffer: int = 50, base_window: int = 25
) -> list[tuple[int, int]]:
    """Slow adaptation windows ``(start, end)`` (iterations counted from 0, end exclusive).

    Parameters
    ----------
    tune : int
        Number of warm-up iterations.
    init_buffer, term_buffer, base_window : int
        Stan's defaults. When ``init_buffer + base_window + term_buffer > tune`` they become
        15%, 75% and 10% of ``tune``; below 20 warm-up iterations no window is used (the
        mass matrix keeps its initial value and only the step size adapts).

    Returns
    -------
    list of (int, int)
        The windows; the mass matrix is updated after iteration ``end - 1``.
    """
    if tune < 20:
        return []
    if init_buffer + base_window + term_buffer > tune:
        init_buffer = int(0.15 * tune)
        term_buffer = int(0.1 * tune)
        base_window = tune - init_buffer - term_buffer
    last = tune - term_buffer
    ends = []
    start, size = init_buffer, base_window
    while True:
        end = start + size
        if end + 2 * size > last:  # the next window would not fit: stretch this one
            end = last
        ends.append((start, end))
        if end >= last:
            return ends
        start, size = end, 2 * size


def regularised_variance(var: torch.Tensor, n: int) -> torch.Tensor:
    """Stan's shrinkage of a window's variance estimate towards ``1e-3``."""
    return (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))


class WelfordVariance:
    """Running mean and variance over draws, per chain and coordinate.

    Parameters
    ----------
    like : torch.Tensor
        ``(C, D)``: sets the shape, dtype and device.
    """

    def __init__(self, like: torch.Tensor) -> None:
        self._like = like
        self.reset()

    def reset(self) -> None:
        """Forget every draw."""
        self.n = 0
        self.mean = torch.zeros_like(self._like)
        self.m2 = torch.zeros_like(self._like)

    def update(self, x: torch.Tensor) -> None:
        """Add one draw ``(C, D)``."""
        self.n += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + delta * (x - self.mean)

    def variance(self) -> torch.Tensor:
        """Sample variance ``(C, D)`` (``n - 1`` denominator)."""
        if self.n < 2:
            raise ValueError(f"variance: needs at least 2 draws, got {self.n}")
        return self.m2 / (self.n - 1)


class DualAveraging:
    """Dual averaging of ``log(step_size)``, one state per chain.

    Parameters
    ----------
    step_size : torch.Tensor
        ``(C,)`` initial step sizes (``mu = log(10 * step_size)``).
    target : float
        Target mean acceptance statistic.
    gamma, t0, kappa : float
        Stan's constants.
    """

    def __init__(
        self,
        step_size: torch.Tensor,
        target: float,
        gamma: float = 0.05,
        t0: float = 10.0,
        kappa: float = 0.75,
    ) -> None:
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.restart(step_size)

    def restart(self, step_size: torch.Tensor) -> None:
        """Start over from ``step_size`` ``(C,)``."""
        self.mu = torch.log(10.0 * step_size)
        self.m = 0
        self.h_bar = torch.zeros_like(step_size)
        self.log_eps_bar = torch.zeros_like(step_size)
        self.log_eps = torch.log(step_size)

    def update(self, accept_stat: torch.Tensor) -> torch.Tensor:
        """Feed one iteration's acceptance statistic ``(C,)``; returns the next step size."""
        self.m += 1
        m = self.m
        w = 1.0 / (m + self.t0)
        self.h_bar = (1.0 - w) * self.h_bar + w * (self.target - accept_stat)
        self.log_eps = self.mu - (math.sqrt(m) / self.gamma) * self.h_bar
        eta = m ** (-self.kappa)
        self.log_eps_bar = eta * self.log_eps + (1.0 - eta) * self.log_eps_bar
        return torch.exp(self.log_eps)

    def final(self) -> torch.Tensor:
        """The averaged step size ``(C,)`` to sample with after warm-up."""
        return torch.exp(self.log_eps_bar)
