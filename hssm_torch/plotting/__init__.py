"""Plots for sequential sampling models: predictive checks, quantile-probability plots,
model cartoons and parameter recovery.

All functions draw with matplotlib and return the ``Figure``; none calls ``plt.show()``.

>>> from hssm_torch.plotting import plot_model_cartoon
>>> fig = plot_model_cartoon("ddm", {"v": 1.0, "a": 1.0, "z": 0.5, "t": 0.3}, n_samples=200)
"""

from hssm_torch.plotting.cartoon import plot_model_cartoon
from hssm_torch.plotting.predictive import plot_predictive
from hssm_torch.plotting.quantile_probability import plot_quantile_probability
from hssm_torch.plotting.recovery import plot_posterior_recovery

__all__ = [
    "plot_model_cartoon",
    "plot_posterior_recovery",
    "plot_predictive",
    "plot_quantile_probability",
]
