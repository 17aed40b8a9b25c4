"""Sequential sampling model simulators and the model registry.

>>> from simulators import list_models
>>> len(list_models()) >= 30
True
"""

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

register_builtin_models()

__all__ = [
    "SIMULATOR_KINDS",
    "ModelSpec",
    "ParamSpec",
    "get_model",
    "list_models",
    "register_model",
    "unregister_model",
]
