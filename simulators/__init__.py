"""Sequential sampling model simulators and the model registry.

>>> from simulators import list_models
>>> len(list_models()) >= 30
True
"""

from simulators.data import simulate_data
from simulators.models import register_builtin_models
from simulators.registry import (
    SIMULATOR_KINDS,
    ModelSpec,
    ParamSpec,
    get_model,
    list_models,
    register_model,
    unregister_model,
)
from simulators.simulate import OMITTED_RESPONSE, OMITTED_RT, SimulationResult, simulate

register_builtin_models()

__all__ = [
    "OMITTED_RESPONSE",
    "OMITTED_RT",
    "SIMULATOR_KINDS",
    "ModelSpec",
    "ParamSpec",
    "SimulationResult",
    "get_model",
    "list_models",
    "register_model",
    "simulate",
    "simulate_data",
    "unregister_model",
]
