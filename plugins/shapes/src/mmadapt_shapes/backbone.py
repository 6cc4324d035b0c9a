"""The ``shapes-clip`` backbone: the shipped weights in mmadapt's open_clip backbone."""

from __future__ import annotations

from mmadapt import UserError

from .model import DEFAULT_WEIGHTS, MODEL_NAME, create_model, get_tokenizer


def build_backbone(weights: str | None):
    """An ``OpenClipBackbone`` around shapes-clip with the shipped (or given) weights."""
    from mmadapt import OpenClipBackbone

    path = weights or DEFAULT_WEIGHTS
    try:
        model = create_model(path)
    except FileNotFoundError:
        raise UserError(
            f"backbone.weights: {path} does not exist. The shipped weights come with mmadapt-shapes; "
            "train your own with `adapt shapes pretrain --out DIR` and pass DIR/weights.safetensors"
        ) from None
    return OpenClipBackbone(model, get_tokenizer(), name=MODEL_NAME)
