"""Plain weights of a trained ``atlas`` run: the base model with the composed image tower, no mmadapt needed.

For an open_clip backbone the file is the whole model's ``state_dict`` (``open_clip.create_model(arch,
pretrained=FILE)`` or ``model.load_state_dict``); for other backbones, the image tower module's.
"""

from __future__ import annotations

from pathlib import Path

import torch
from mmadapt import OpenClipBackbone, UserError

from .vectors import local_names


def merged_state_dict(adapter) -> tuple[dict[str, torch.Tensor], str]:
    """The base model's state dict with each image-tower block replaced by its composed weight, and what it is."""
    backbone = adapter.backbone
    root, kind = ((backbone.model, "open_clip model state_dict") if isinstance(backbone, OpenClipBackbone)
                  else (backbone.image.module, "image tower state_dict"))
    blocks = backbone.image.parameter_blocks()
    names = local_names(root, blocks)
    with torch.no_grad():
        composed = adapter.composed_weights()
        state = {name: tensor.detach().clone().contiguous() for name, tensor in root.state_dict().items()}
        for name, tensor in composed.items():
            state[names[name]] = tensor.detach().clone().contiguous()
    return state, kind


def merge_run(run_dir: str | Path, out: str | Path) -> str:
    """Write the merged weights of the ``atlas`` run in ``run_dir`` to ``out`` (safetensors); return what they are."""
    from mmadapt import load_run
    from safetensors.torch import save_file

    finished = load_run(run_dir)
    if not hasattr(finished.adapter, "composed_weights"):
        raise UserError(f"{run_dir}: adapter {finished.recipe.adapter.name} is not atlas; `adapt atlas merge` "
                        "merges the task vectors of an atlas run")
    state, kind = merged_state_dict(finished.adapter)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"content": kind, "base": finished.backbone.name, "source": str(run_dir)})
    return kind
