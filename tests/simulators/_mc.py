"""Monte-Carlo comparison helpers shared by the simulator accuracy tests."""

from __future__ import annotations

import numpy as np

QS = (0.1, 0.3, 0.5, 0.7, 0.9)


def check_choice_and_quantiles(rt, resp, prob, cond_cdf, *, n_se=4.0, label=""):
    """Compare simulated choices/RTs with a model's choice probabilities and conditional CDFs.

    ``prob[c]`` is P(response c); ``cond_cdf[c](x)`` the CDF of rt given response c.
    Choice proportions must be within ``n_se`` binomial standard errors; for the quantiles,
    the model CDF at the empirical p-quantile must be within ``n_se * sqrt(p (1-p) / n_c)``
    of p (the standard error of an empirical quantile expressed on the probability scale).
    Returns the largest |z| seen, for reporting.
    """
    n = len(rt)
    worst = 0.0
    for c, p in prob.items():
        sel = rt[resp == c]
        se = np.sqrt(max(p * (1 - p), 1e-12) / n)
        z = (len(sel) / n - p) / se
        assert abs(z) < n_se, (
            f"{label} P(response={c}): sim {len(sel) / n:.4f} vs {p:.4f} (z={z:.1f})"
        )
        worst = max(worst, abs(z))
        if len(sel) < 200:
            continue
        for q in QS:
            x = np.quantile(sel, q)
            g = cond_cdf[c](x)
            se_q = np.sqrt(q * (1 - q) / len(sel))
            zq = (g - q) / se_q
            assert abs(zq) < n_se, (
                f"{label} response {c} quantile {q}: model CDF at sim quantile {x:.4f} is {g:.4f} "
                f"(z={zq:.1f})"
            )
            worst = max(worst, abs(zq))
    return worst
