"""Helpers of the aTLAS tests: fine-tuned copies of the tiny CLIP and task vector files between two backbones."""

from __future__ import annotations

from pathlib import Path

import torch
from mmadapt.testing_models import tiny_openclip_backbone
from mmadapt_atlas.adapter import Atlas
from mmadapt_atlas.config import AtlasConfig
from mmadapt_atlas.vectors import TaskVector, base_identity, save_vector


def perturbed_backbone(seed: int, scale: float = 0.05):
    """The tiny CLIP with every image-tower block moved by ``scale`` times seeded normal noise."""
    backbone = tiny_openclip_backbone()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in backbone.image.parameter_blocks().values():
            param.add_(scale * torch.randn(param.shape, generator=generator))
    return backbone


def write_vector(base, tuned, path: Path, task: str = "other", dtype: torch.dtype = torch.float32) -> str:
    """Write ``tuned - base`` over the image tower as a task vector file of ``base``; return its path."""
    tuned_blocks = tuned.image.parameter_blocks()
    tensors = {name: (tuned_blocks[name] - p).detach().to(dtype) for name, p in base.image.parameter_blocks().items()}
    save_vector(path, TaskVector(tensors, {**base_identity(base), "task": task}))
    return str(path)


def make_atlas(backbone, task, vectors, **options) -> Atlas:
    """An ``atlas`` adapter over ``vectors`` (file paths)."""
    return Atlas(AtlasConfig(vectors=list(vectors), **options), backbone, task)
