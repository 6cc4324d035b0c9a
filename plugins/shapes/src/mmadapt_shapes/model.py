"""The ``shapes-clip`` model: open_clip config registration, creation, weights and fast encoders.

torch and open_clip are imported inside functions so importing this package stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

MODEL_NAME = "shapes-clip"
CONFIG_DIR = Path(__file__).parent / "model_configs"
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / f"{MODEL_NAME}.safetensors"

_registered = False


def register_model_config() -> None:
    """Make ``shapes-clip`` known to ``open_clip`` (idempotent)."""
    global _registered
    if _registered:
        return
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)
    _registered = True


def create_model(weights: str | Path | None = "default", device: str = "cpu") -> Any:
    """Build ``shapes-clip``; ``weights`` is "default" (the shipped weights), a path
    (``.safetensors`` or a training checkpoint ``.pt``), or None for random initialisation."""
    import logging

    import open_clip

    register_model_config()
    # open_clip warns that the model is randomly initialised; weights are loaded just below.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        model = open_clip.create_model(MODEL_NAME, pretrained=None, device=device)
    finally:
        logging.disable(previous)
    if weights is not None:
        path = DEFAULT_WEIGHTS if weights == "default" else Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"shapes-clip weights not found: {path}")
        model.load_state_dict(load_state_dict(path), strict=True)
    return model.to(device)


def model_config() -> dict[str, Any]:
    """open_clip's config of ``shapes-clip`` (``embed_dim``, ``vision_cfg``, ``text_cfg``): the shipped JSON."""
    import json

    return json.loads((CONFIG_DIR / f"{MODEL_NAME}.json").read_text())


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Model weights from a ``.safetensors`` file or from a pretraining checkpoint, as fp32."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    return {k: v.float() for k, v in state.items()}


def get_tokenizer() -> Any:
    """The standard open_clip BPE tokenizer (context length 77)."""
    import open_clip

    register_model_config()
    return open_clip.get_tokenizer(MODEL_NAME)


def images_to_tensor(images: np.ndarray | list[np.ndarray], model: Any, device: Any = "cpu") -> torch.Tensor:
    """uint8 NxHxWx3 images -> normalised float NCHW tensor using the model's preprocessing."""
    import torch

    arr = np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images)
    x = torch.from_numpy(arr).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    cfg = model.visual.preprocess_cfg
    mean = torch.tensor(cfg["mean"], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def encode_text_trimmed(model: Any, tokens: torch.Tensor, normalize: bool = False,
                        buckets: int = 1) -> torch.Tensor:
    """``model.encode_text`` computed only up to each group's last end-of-text token.

    Exact: the text tower is causal and pools at the end token (the largest token id), so positions
    after it never influence the result. With ``buckets > 1`` captions are sorted by length and
    encoded in that many groups, so short captions are not padded to the longest one.
    """
    import torch

    if buckets <= 1 or len(tokens) < 2 * buckets:
        return _encode_trimmed(model, tokens, normalize)
    order = torch.argsort(tokens.argmax(dim=-1))
    feats = torch.cat([_encode_trimmed(model, tokens[idx], normalize) for idx in order.chunk(buckets)])
    return feats[torch.argsort(order)]


def _encode_trimmed(model: Any, tokens: torch.Tensor, normalize: bool) -> torch.Tensor:
    import torch
    import torch.nn.functional as F
    from open_clip.transformer import text_global_pool

    n = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :n]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type)
    proj = model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return F.normalize(x, dim=-1) if normalize else x


def count_parameters(model: Any) -> int:
    """Total number of parameters."""
    return sum(p.numel() for p in model.parameters())
