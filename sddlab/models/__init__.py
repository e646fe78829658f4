"""Model registry; importing this package registers every built-in model."""

from sddlab.models import mlp, resnet, vgg  # noqa: F401  (registers)
from sddlab.models.build import build_model
from sddlab.models.registry import MODELS, ModelSpec, prunable_names, register_model

__all__ = ["MODELS", "ModelSpec", "build_model", "prunable_names", "register_model"]
