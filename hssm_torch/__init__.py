"""hssm-torch: hierarchical Bayesian sequential sampling models on PyTorch + Pyro."""

__version__ = "0.1.0"

__all__ = ["__version__"]
