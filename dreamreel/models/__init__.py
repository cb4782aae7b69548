"""The model zoo: one registry, one ``create_model(name, weights)``, one spec per model.

The registry (``registry.py``) is a leaf; ``builder.py`` builds a registered model with its weights;
``zoo.py`` registers the models. A new model is one ``register`` call.
"""

from .builder import WEIGHT_CHOICES, check_weights_arg, create_model, describe_weights, load_state_dict_file
from .registry import ModelSpec, get_spec, list_models, register
from . import zoo  # noqa: F401  (registers the models; zoo imports the registry, not this package)

__all__ = ["ModelSpec", "register", "list_models", "get_spec", "create_model", "describe_weights", "check_weights_arg",
           "load_state_dict_file", "WEIGHT_CHOICES"]
