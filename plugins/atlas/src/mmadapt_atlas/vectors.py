"""Task vectors: fine-tuned minus pre-trained image-tower weights, as safetensors files that name their base.

A file holds one tensor per parameter block of the image tower, keyed by the block's name in
``Backbone.named_parameters()``, and metadata naming the base model (its name and a SHA-256 of its
pre-trained image-tower weights), the task and the run it came from. Composing a vector with
another base is refused with that reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from mmadapt import Backbone, UserError
from torch import nn

#: The ``format`` entry of a task vector file's metadata.
FORMAT = "mmadapt-atlas task vector 1"
DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


@dataclass
class TaskVector:
    """One task vector: a tensor per image-tower block and the metadata of its file."""

    tensors: dict[str, torch.Tensor]
    #: ``format``, ``base``, ``base_sha256``, ``task``, ``source`` (and whatever else the file holds).
    metadata: dict[str, str]

    @property
    def task(self) -> str:
        """The task the vector was fine-tuned on."""
        return self.metadata.get("task", "")


def weights_sha256(blocks: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors: names, dtypes, shapes and bytes, in name order (the base model's identity)."""
    digest = hashlib.sha256()
    for name in sorted(blocks):
        tensor = blocks[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def base_identity(backbone: Backbone) -> dict[str, str]:
    """What a task vector records of its base: the backbone's name and the hash of its image-tower weights."""
    return {"base": backbone.name, "base_sha256": weights_sha256(dict(backbone.image.parameter_blocks()))}


def save_vector(path: str | Path, vector: TaskVector) -> None:
    """Write ``vector`` as a safetensors file (contiguous tensors, string metadata)."""
    from safetensors.torch import save_file

    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in vector.tensors.items()}
    save_file(tensors, str(path), metadata={"format": FORMAT, **vector.metadata})


def load_vector(path: str | Path) -> TaskVector:
    """Read a task vector file; a ``UserError`` names the file when it is missing or not a task vector."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"task vector {path} does not exist; make vectors with "
                        "`adapt atlas vectors RUN_DIR... --out DIR`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - a safetensors handle is not iterable
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise UserError(f"task vector {path} cannot be read as safetensors ({exc})") from None
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path} is not a task vector of mmadapt-atlas (metadata format {metadata.get('format')!r}); "
                        "make vectors with `adapt atlas vectors`")
    return TaskVector(tensors, metadata)


def check_base(vector: TaskVector, path: str | Path, backbone: Backbone, identity: dict[str, str]) -> None:
    """A ``UserError`` unless ``vector`` was made over ``backbone``'s pre-trained image tower, block for block."""
    if vector.metadata.get("base_sha256") != identity["base_sha256"]:
        raise UserError(
            f"task vector {path} was fine-tuned from another base model ({vector.metadata.get('base')!r}, image-tower "
            f"weights sha256 {vector.metadata.get('base_sha256', '?')[:12]}), not from this run's backbone "
            f"({identity['base']!r}, sha256 {identity['base_sha256'][:12]}); compose vectors of the recipe's base only"
        )
    blocks = backbone.image.parameter_blocks()
    wrong = [name for name, tensor in vector.tensors.items()
             if name not in blocks or tensor.shape != blocks[name].shape]
    missing = sorted(set(blocks) - set(vector.tensors))
    if wrong or missing:
        raise UserError(f"task vector {path} does not fit the image tower: unknown or misshapen blocks {wrong[:3]}, "
                        f"missing blocks {missing[:3]}")


def local_names(module: nn.Module, blocks: dict[str, nn.Parameter]) -> dict[str, str]:
    """Each block's name inside ``module`` (its own ``named_parameters``), found by identity of the tensors."""
    by_id = {id(param): name for name, param in module.named_parameters(remove_duplicate=False)}
    names = {}
    for name, param in blocks.items():
        if id(param) not in by_id:
            raise ValueError(f"block {name} is not a parameter of {type(module).__name__}")
        names[name] = by_id[id(param)]
    return names


def tuned_image_weights(backbone: Backbone) -> dict[str, torch.Tensor]:
    """The image tower's effective weights by module-local name, LoRA layers merged into their base weights.

    Merging happens in place on this backbone (a copy loaded for this purpose); names lose PEFT's
    ``base_layer.`` segment, so they match the pre-trained tower's.
    """
    module = backbone.image.module
    with torch.no_grad():
        for layer in module.modules():
            if hasattr(layer, "lora_A") and hasattr(layer, "merge"):
                layer.merge()
    return {name.replace("base_layer.", ""): param.detach()
            for name, param in module.named_parameters() if "lora_" not in name}


def vector_of_run(run_dir: str | Path, dtype: torch.dtype) -> TaskVector:
    """The task vector of a finished run: its image tower (LoRA merged) minus the recipe's pre-trained one."""
    from mmadapt import load_run

    finished = load_run(run_dir)
    base = finished.recipe.backbone.build()
    blocks = base.image.parameter_blocks()
    local = local_names(base.image.module, blocks)
    tuned = tuned_image_weights(finished.backbone)
    absent = [local[name] for name in blocks if local[name] not in tuned]
    if absent:
        raise UserError(f"{run_dir}: the run's image tower lacks {absent[:3]} of its pre-trained blocks")
    with torch.no_grad():
        tensors = {name: (tuned[local[name]].float() - blocks[name].float()).to(dtype) for name in blocks}
    if not any(bool(t.any()) for t in tensors.values()):
        raise UserError(f"{run_dir}: the run left the image tower unchanged (adapter "
                        f"{finished.recipe.adapter.name}); task vectors come from `finetune` runs or `lora` runs "
                        "on the vision tower")
    metadata = {**base_identity(base), "task": finished.adapter.task.name or "", "source": str(Path(run_dir).resolve()),
                "adapter": finished.recipe.adapter.name}
    return TaskVector(tensors, metadata)
