"""hssm-torch: hierarchical Bayesian sequential sampling models on PyTorch + Pyro.

>>> import hssm_torch as hsm
>>> callable(hsm.load_onnx)
True
"""

from hssm_torch.network_registry import load_network
from hssm_torch.onnx_loader import load_onnx
from hssm_torch.plotting import (
    plot_model_cartoon,
    plot_posterior_recovery,
    plot_predictive,
    plot_quantile_probability,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load_network",
    "load_onnx",
    "plot_model_cartoon",
    "plot_posterior_recovery",
    "plot_predictive",
    "plot_quantile_probability",
]
