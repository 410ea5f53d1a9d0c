"""edgecnn.models owns the architectures: the spec schema, the registry (`model_registry`) and its zoo of
classic CNNs, user spec files, TensorFlow-free parameter/MAC counts and the Keras builder (Keras loaded
lazily).

Importing the package registers the zoo, so `get_model_spec("keras-convnet")` always finds it."""

from edgecnn.models import zoo  # noqa: F401 - registers the built-in architectures
from edgecnn.models.keras_builder import build_keras_model
from edgecnn.models.layers import HEAD_NAME, LayerSpec
from edgecnn.models.model_registry import get_model_spec, list_model_specs, model_names, register_model
from edgecnn.models.size import LayerInfo, layer_table, params_and_macs
from edgecnn.models.spec import LR_SCHEDULES, OPTIMIZERS, ModelSpec, Recipe
from edgecnn.models.spec_file import load_spec_file, spec_from_dict

__all__ = [
    "HEAD_NAME",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "LayerInfo",
    "LayerSpec",
    "ModelSpec",
    "Recipe",
    "build_keras_model",
    "get_model_spec",
    "layer_table",
    "list_model_specs",
    "load_spec_file",
    "model_names",
    "params_and_macs",
    "register_model",
    "spec_from_dict",
]
