"""Batched per-response Gaussian KDE on log response times (the LAN label estimator).

For each parameter set (row) and each response ``c`` the simulated log RTs ``x_i`` of the
``n_c`` trials with that response define a Gaussian KDE with Silverman's bandwidth

    h_c = (4/3)^(1/5) * max(std(x), 1e-3) * n_c^(-1/5)

(as in ssm-simulators' ``LogKDE``), and the density of ``(rt, c)`` is that KDE transformed
back to RT space and weighted by the response's share of all simulated trials:

    p(rt, c) = (n_c / n_sim) * f_c(log rt) / rt.

Trials without a response by ``max_t`` (omitted) count in ``n_sim`` but not in any ``n_c``,
so the density integrates to the probability of responding by ``max_t``.

Speed: the KDE is evaluated on a fine grid per (row, response) by linear binning and an
FFT convolution (float64), then linearly interpolated in log density. Points where the grid
density is below ``1e-10`` of its maximum (far tails, where FFT round-off dominates) or
outside the grid are evaluated exactly from the ``window`` nearest samples on each side
(a log-sum-exp over sorted samples), which is accurate in tails because the sum is dominated
by the nearest samples there. Everything runs batched over rows on the input's device.

Example
-------
>>> import torch
>>> rt = torch.rand(2, 500) + 0.3
>>> resp = torch.where(torch.rand(2, 500) < 0.5, -1, 1)
>>> kde = LogRTKDE(rt, resp, choices=(-1, 1))
>>> kde.log_density(torch.full((2, 3), 0.8), torch.ones(2, 3, dtype=torch.long)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["LogRTKDE", "silverman_bandwidth"]

_SILVERMAN = (4.0 / 3.0) ** 0.2
_SPAN = 1000.0  # key spacing between (row, response) segments; |log rt| < 200 always
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def silverman_bandwidth(
    std: torch.Tensor, n: torch.Tensor, std_floor: float = 1e-3
) -> torch.Tensor:
    """Silverman's rule ``(4/3)^(1/5) * max(std, std_floor) * n^(-1/5)`` (elementwise).

    Example
    -------
    >>> float(silverman_bandwidth(torch.tensor(1.0), torch.tensor(1.0)))  # doctest: +ELLIPSIS
    1.059...
    """
    return _SILVERMAN * std.clamp_min(std_floor) * n.clamp_min(1).to(std.dtype) ** -0.2


class LogRTKDE:
    """Per-response KDEs of log RT for a batch of simulated data sets.

    Parameters
    ----------
    rt, response:
        Tensors ``(B, n)``: simulated RTs (seconds) and response codes.
    choices:
        The model's response codes, in the model's order.
    omitted:
        Optional bool ``(B, n)``: trials without a response (excluded from every KDE but
        counted in ``n_sim``). Defaults to ``response`` not among ``choices``.
    grid_size:
        Grid points per (row, response) for the FFT evaluation.
    window:
        Samples on each side used by the exact tail evaluation.

    Attributes
    ----------
    counts:
        ``(B, C)`` trials per response.
    bandwidth:
        ``(B, C)`` Silverman bandwidths on the log-RT scale.

    Example
    -------
    >>> kde = LogRTKDE(torch.rand(1, 200) + 0.2, torch.ones(1, 200, dtype=torch.long), (-1, 1))
    >>> kde.counts.tolist()
    [[0, 200]]
    """

    def __init__(
        self,
        rt: torch.Tensor,
        response: torch.Tensor,
        choices: Sequence[int],
        omitted: torch.Tensor | None = None,
        *,
        grid_size: int = 4096,
        window: int = 128,
    ) -> None:
        if rt.ndim != 2 or response.shape != rt.shape:
            raise ValueError(
                f"rt, response: expected two tensors of the same shape (B, n), got "
                f"{tuple(rt.shape)} and {tuple(response.shape)}"
            )
        if grid_size < 64:
            raise ValueError(f"grid_size: expected an integer >= 64, got {grid_size}")
        self.device = rt.device
        self.choices = tuple(int(c) for c in choices)
        B, n = rt.shape
        C = len(self.choices)
        self.n_rows, self.n_sim, self.n_choices = B, n, C
        self.grid_size, self.window = int(grid_size), int(window)

        codes = torch.tensor(self.choices, device=self.device, dtype=response.dtype)
        match = response.unsqueeze(-1) == codes  # (B, n, C)
        cidx = match.to(torch.int64).argmax(-1)
        valid = match.any(-1)
        if omitted is not None:
            valid = valid & ~omitted.to(torch.bool)
        x = rt.to(torch.float64)
        bad = valid & ~(x > 0)
        if bool(bad.any()):
            raise ValueError("rt: responded trials must have rt > 0 (found rt <= 0 or NaN)")
        x = torch.where(valid, x, torch.ones_like(x)).log()

        self.counts = torch.zeros(B, C, dtype=torch.int64, device=self.device)
        self.counts.scatter_add_(1, torch.where(valid, cidx, 0), valid.to(torch.int64))
        # Global sort key: segment (row, response) then log rt; omitted trials go to the end
        # of their row (between its last segment and the next row's first).
        rows = torch.arange(B, device=self.device).unsqueeze(1)
        seg = rows * C + cidx
        key = torch.where(valid, seg * _SPAN + x, ((rows + 1) * C) * _SPAN - _SPAN / 2)
        key, order = key.sort(dim=1)
        self._key = key.reshape(-1)
        self._x = torch.gather(x, 1, order).reshape(-1)
        starts = torch.cumsum(self.counts, 1) - self.counts
        self._start = (starts + rows * n).reshape(-1)  # flat index of each segment's start
        cnt = self.counts.reshape(-1)
        self._cnt = cnt

        # Per-segment mean / std / min / max of log rt.
        xf = self._x.view(B, n)
        flat_seg = torch.where(valid.gather(1, order), (rows * C + cidx.gather(1, order)), B * C)
        sums = torch.zeros(B * C + 1, dtype=torch.float64, device=self.device)
        sums.scatter_add_(0, flat_seg.reshape(-1), xf.reshape(-1))
        sq = torch.zeros_like(sums)
        cntf = cnt.to(torch.float64).clamp_min(1)
        mean = sums[:-1] / cntf
        dev = xf - torch.where(flat_seg < B * C, mean[flat_seg.clamp_max(B * C - 1)], 0.0)
        sq.scatter_add_(0, flat_seg.reshape(-1), (dev * dev).reshape(-1))
        std = (sq[:-1] / cntf).sqrt()
        self.bandwidth = silverman_bandwidth(std, cnt).view(B, C)
        h = self.bandwidth.reshape(-1)
        self._h = h
        has = cnt > 0
        first = self._x[self._start.clamp_max(B * n - 1)]
        last = self._x[(self._start + cnt - 1).clamp(0, B * n - 1)]
        first = torch.where(has, first, torch.zeros_like(first))
        last = torch.where(has, last, torch.ones_like(last))
        margin = 8.0 * h
        self._lo = first - margin
        G = self.grid_size
        self._dx = (last + margin - self._lo) / (G - 1)
        self._log_share = torch.where(
            has, (cnt.to(torch.float64) / n).log(), torch.full_like(h, -math.inf)
        )
        self._grid_log_f = self._grid_density(flat_seg.reshape(-1), cnt)

    # ------------------------------------------------------------------ grid evaluation
    def _grid_density(self, flat_seg: torch.Tensor, cnt: torch.Tensor) -> torch.Tensor:
        R, G = cnt.numel(), self.grid_size
        keep = flat_seg < R
        seg = flat_seg[keep]
        x = self._x[keep]
        pos = (x - self._lo[seg]) / self._dx[seg]
        j = pos.floor().clamp(0, G - 2)
        w = pos - j
        j = j.to(torch.int64) + seg * G
        hist = torch.zeros(R * G, dtype=torch.float64, device=self.device)
        hist.scatter_add_(0, j, 1.0 - w)
        hist.scatter_add_(0, j + 1, w)
        hist = hist.view(R, G)
        nfft = 2 * G
        off = torch.arange(nfft, device=self.device, dtype=torch.float64)
        off = torch.where(off < G, off, off - nfft)
        z = off.unsqueeze(0) * (self._dx / self._h).unsqueeze(1)
        kern = torch.exp(-0.5 * z * z - _LOG_SQRT_2PI) / self._h.unsqueeze(1)
        dens = torch.fft.irfft(torch.fft.rfft(hist, n=nfft) * torch.fft.rfft(kern, n=nfft), n=nfft)[
            :, :G
        ]
        dens = dens / cnt.to(torch.float64).clamp_min(1).unsqueeze(1)
        top = dens.amax(1, keepdim=True)
        reliable = dens > 1e-10 * top
        return torch.where(reliable, dens.clamp_min(1e-300).log(), torch.nan)

    # ------------------------------------------------------------------ evaluation
    def _segments(self, choice_index: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(self.n_rows, device=self.device).view(
            -1, *([1] * (choice_index.ndim - 1))
        )
        return rows * self.n_choices + choice_index

    def log_kde(self, log_rt: torch.Tensor, choice_index: torch.Tensor) -> torch.Tensor:
        """Log density of the log-RT KDE ``log f_c(y)`` at ``log_rt`` (``(B, M)``, float64).

        ``choice_index`` ``(B, M)`` holds positions in ``choices``. Segments without trials
        give ``-inf``.
        """
        seg = self._segments(choice_index).reshape(-1)
        y = log_rt.to(torch.float64).reshape(-1)
        G = self.grid_size
        u = (y - self._lo[seg]) / self._dx[seg]
        inside = (u >= 0) & (u <= G - 1)
        j = u.floor().clamp(0, G - 2)
        w = u - j
        j = j.to(torch.int64)
        g = self._grid_log_f.view(-1)
        base = seg * G + j
        val = (1 - w) * g[base] + w * g[base + 1]
        use_grid = inside & ~val.isnan()
        out = torch.where(use_grid, val, torch.zeros_like(val))
        need = (~use_grid).nonzero().squeeze(1)
        if need.numel():
            out[need] = self._exact_tail(y[need], seg[need])
        out = torch.where(self._cnt[seg] > 0, out, torch.full_like(out, -math.inf))
        return out.view(log_rt.shape)

    def _exact_tail(self, y: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        K = self.window
        q = seg.to(torch.float64) * _SPAN + y
        pos = torch.searchsorted(self._key, q)
        start, cnt = self._start[seg], self._cnt[seg]
        offs = torch.arange(-K, K, device=self.device)
        idx = pos.unsqueeze(1) + offs
        ok = (idx >= start.unsqueeze(1)) & (idx < (start + cnt).unsqueeze(1))
        xs = self._x[idx.clamp(0, self._x.numel() - 1)]
        h = self._h[seg].unsqueeze(1)
        z = (y.unsqueeze(1) - xs) / h
        terms = torch.where(ok, -0.5 * z * z, torch.full_like(z, -math.inf))
        lse = torch.logsumexp(terms, 1)
        return lse - _LOG_SQRT_2PI - self._h[seg].log() - cnt.to(torch.float64).clamp_min(1).log()

    def log_density(self, rt: torch.Tensor, choice_index: torch.Tensor) -> torch.Tensor:
        """``log p(rt, c) = log(n_c / n_sim) + log f_c(log rt) - log rt`` (``(B, M)``, float64).

        ``rt`` must be positive; responses without simulated trials give ``-inf``.

        Example
        -------
        >>> kde = LogRTKDE(torch.rand(1, 300) + 0.2, torch.ones(1, 300, dtype=torch.long), (-1, 1))
        >>> bool(kde.log_density(torch.tensor([[0.7]]), torch.tensor([[1]])) > -5)
        True
        """
        r = rt.to(torch.float64)
        lf = self.log_kde(r.log(), choice_index)
        share = self._log_share[self._segments(choice_index).reshape(-1)].view(r.shape)
        return share + lf - r.log()

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws ``(rt, choice_index)`` per row from the KDE mixture, each ``(B, n)``.

        The response is drawn with probabilities ``n_c / (number responded)``, the log RT
        from that response's KDE (a random simulated log RT plus ``h_c`` times a standard
        normal). Rows without any responded trial raise ``ValueError``.
        """
        B, C = self.n_rows, self.n_choices
        cnt = self.counts.to(torch.float64)
        total = cnt.sum(1, keepdim=True)
        if bool((total == 0).any()):
            raise ValueError("cannot sample from a KDE row without any responded trial")
        cdf = (cnt.cumsum(1) / total).contiguous()
        cdf[:, -1] = 1.0
        u = torch.rand(B, n, generator=generator, device=self.device, dtype=torch.float64)
        ci = torch.searchsorted(cdf, u, right=True).clamp_max(C - 1)
        seg = self._segments(ci)
        c_n = self._cnt[seg]
        v = torch.rand(B, n, generator=generator, device=self.device, dtype=torch.float64)
        pick = self._start[seg] + (v * c_n).floor().to(torch.int64).clamp_max(c_n - 1)
        eps = torch.randn(B, n, generator=generator, device=self.device, dtype=torch.float64)
        logrt = self._x[pick] + self._h[seg] * eps
        return logrt.exp(), ci
