"""hssm-torch: hierarchical Bayesian sequential sampling models on PyTorch + Pyro.

>>> import hssm_torch as hsm
>>> callable(hsm.load_onnx)
True
"""

from hssm_torch.inference import BoundaryWarning, ConvergenceWarning, JitMismatchWarning
from hssm_torch.links import Link
from hssm_torch.model import HSSM
from hssm_torch.network_registry import load_network
from hssm_torch.onnx_loader import load_onnx
from hssm_torch.param import Param
from hssm_torch.plotting import (
    plot_model_cartoon,
    plot_posterior_recovery,
    plot_predictive,
    plot_quantile_probability,
)
from hssm_torch.predictive import posterior_predictive, simulate_predictive
from hssm_torch.priors import Prior

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BoundaryWarning",
    "ConvergenceWarning",
    "HSSM",
    "JitMismatchWarning",
    "Link",
    "load_network",
    "load_onnx",
    "Param",
    "plot_model_cartoon",
    "plot_posterior_recovery",
    "plot_predictive",
    "plot_quantile_probability",
    "posterior_predictive",
    "Prior",
    "simulate_predictive",
]
