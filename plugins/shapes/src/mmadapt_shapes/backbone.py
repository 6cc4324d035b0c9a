"""The ``shapes-clip`` backbone: the shipped weights in mmadapt's open_clip backbone."""

from __future__ import annotations

from mmadapt import UserError

from .config import ShapesClipConfig
from .model import DEFAULT_WEIGHTS, MODEL_NAME, create_model, get_tokenizer, model_config


def build_backbone(config: ShapesClipConfig):
    """An ``OpenClipBackbone`` around shapes-clip with the shipped weights, or those ``config.weights`` names."""
    from mmadapt import OpenClipBackbone

    path = config.weights or DEFAULT_WEIGHTS
    try:
        model = create_model(path)
    except FileNotFoundError:
        raise UserError(
            f"backbone.weights: {path} does not exist. The shipped weights come with mmadapt-shapes; "
            "train your own with `adapt shapes pretrain --out DIR` and pass DIR/weights.safetensors"
        ) from None
    return OpenClipBackbone(model, get_tokenizer(), name=MODEL_NAME, model_config=model_config())
