"""``OpenClipBackbone``: any open_clip model behind the ``Backbone`` contract."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import open_clip
import torch
from torch import nn

from mmadapt.backbone import Backbone, Preprocessing
from mmadapt.errors import UserError

from ..hub import download_failure, hub_offline_when_unreachable, offline_help
from .openclip_towers import OpenClipTextTower, OpenClipTokenTextTower, Tokenizer, image_tower, text_transformer

if TYPE_CHECKING:
    # Only for annotations: backbones.py imports this module lazily, and not the other way round.
    from .config import OpenClipConfig


class OpenClipBackbone(Backbone):
    """An open_clip model (CLIP, CustomTextCLIP, CoCa) with any image tower.

    The towers' types say what the model supports: open_clip's ViT or a timm ``VisionTransformer``
    trunk gives a ``TokenImageTower``, other image towers an ``ImageTower``; open_clip's text
    transformer pooled at the end token gives a ``TokenTextTower``, other text towers (CoCa's, Hugging
    Face models) a ``TextTower``.
    """

    def __init__(self, model: nn.Module, tokenizer: Tokenizer | None = None, name: str = "openclip",
                 model_config: dict[str, Any] | None = None) -> None:
        """Wrap an already built open_clip ``model``; freezes it and puts it in eval mode.

        ``tokenizer`` defaults to open_clip's CLIP BPE tokenizer at the model's context length.
        ``model_config`` is open_clip's config of the model (``embed_dim``, ``vision_cfg``,
        ``text_cfg``, ...), which :meth:`save_plain_weights` writes beside merged weights; without it
        merged weights cannot be written. Plugins that build their own open_clip model (their own
        config and weights) use this.
        """
        if tokenizer is None:
            tokenizer = open_clip.SimpleTokenizer(context_length=model.context_length)
        image = image_tower(model.visual, f"{name} image tower")
        text_class = OpenClipTokenTextTower if text_transformer(model) is not None else OpenClipTextTower
        text = text_class(model, tokenizer, f"{name} text tower")
        super().__init__(image, text, _preprocessing_of(model.visual), _embed_dim_of(model, text), name)
        self.model = model
        self.model_config = model_config
        self.freeze_pretrained()

    @classmethod
    def from_config(cls, config: OpenClipConfig) -> OpenClipBackbone:
        """Build the model and tokenizer named by a recipe section; user mistakes raise ``UserError``."""
        _check_arch(config.arch)
        pretrained = os.path.expanduser(config.pretrained) if config.pretrained else None
        tag_cfg = _pretrained_tag_cfg(config.arch, pretrained)
        model = _create_model(config, pretrained, tag_cfg)
        tokenizer = _fetch(
            lambda: open_clip.get_tokenizer(config.arch, cache_dir=config.cache_dir),
            f"the tokenizer of {config.arch!r}",
            local_key=None,
        )
        model_config = {**open_clip.get_model_config(config.arch), "quick_gelu": _quick_gelu(config, tag_cfg)}
        return cls(model, tokenizer, name=f"openclip {config.arch}", model_config=model_config)

    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp`` of the model's learned temperature, as a scalar tensor."""
        # Some models store it with shape (1,); callers multiply logits by a scalar.
        return self.model.logit_scale.exp().reshape(())

    def save_plain_weights(self, state: dict[str, torch.Tensor], folder: Path) -> str:
        """Write ``open_clip_config.json`` and ``open_clip_model.safetensors``, open_clip's own layout:
        ``open_clip.create_model("local-dir:FOLDER")`` (or ``"hf-hub:ORG/NAME"`` once pushed) loads them."""
        from safetensors.torch import save_file

        if self.model_config is None:
            raise UserError(f"backbone {self.name} was built without its open_clip model config, so merged weights "
                            "cannot be written in open_clip's format; export without --merge")
        preprocess = {"mean": list(self.preprocessing.mean), "std": list(self.preprocessing.std),
                      "interpolation": self.preprocessing.interpolation}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "open_clip_config.json").write_text(
            json.dumps({"model_cfg": self.model_config, "preprocess_cfg": preprocess}, indent=2) + "\n")
        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in state.items()},
                  str(folder / "open_clip_model.safetensors"))
        return 'import open_clip\n\nmodel = open_clip.create_model("local-dir:{folder}")'


def _preprocessing_of(visual: nn.Module) -> Preprocessing:
    cfg: dict[str, Any] = getattr(visual, "preprocess_cfg", None) or {}
    size = cfg.get("size", getattr(visual, "image_size", 224))
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height != width:
        raise NotImplementedError(f"non-square image towers ({height}x{width}) are not supported")
    return Preprocessing(
        size=int(height),
        mean=tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)),
        interpolation=cfg.get("interpolation", "bicubic"),
    )


def _embed_dim_of(model: nn.Module, text: OpenClipTextTower) -> int:
    """The joint width as the image tower declares it (open_clip ViT and ResNet towers do), else as the text
    tower's features have it."""
    output_dim = getattr(model.visual, "output_dim", None)
    if output_dim:
        return int(output_dim)
    with torch.no_grad():
        return int(text.encode(text.tokenize([""])).shape[-1])


def _check_arch(arch: str) -> None:
    known = open_clip.list_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise UserError(
            f"openclip: unknown arch {arch!r}{hint}; see python -c 'import open_clip; print(open_clip.list_models())'"
        )


def _pretrained_tag_cfg(arch: str, pretrained: str | None) -> dict[str, Any]:
    """The open_clip config of a pretrained tag; empty for random weights or an existing file."""
    if pretrained is None:
        return {}
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg or os.path.isfile(pretrained):
        return tag_cfg
    tags = open_clip.list_pretrained_tags_by_model(arch)
    close = difflib.get_close_matches(pretrained, tags, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(
        f"openclip: pretrained {pretrained!r} is neither a pretrained tag of {arch}{hint} nor an existing "
        f"checkpoint file. Tags of {arch}: {', '.join(tags) or 'none'}"
    )


def _quick_gelu(config: OpenClipConfig, tag_cfg: dict[str, Any]) -> bool:
    # A tag records whether its weights were trained with QuickGELU; building the arch's default GELU
    # instead would load them without error but give wrong features.
    return config.quick_gelu if config.quick_gelu is not None else bool(tag_cfg.get("quick_gelu", False))


def _create_model(config: OpenClipConfig, pretrained: str | None, tag_cfg: dict[str, Any]) -> nn.Module:
    quick_gelu = _quick_gelu(config, tag_cfg)

    def create() -> nn.Module:
        return open_clip.create_model(
            config.arch, pretrained=pretrained, cache_dir=config.cache_dir, force_quick_gelu=quick_gelu
        )

    needs = [f"the weights of {config.arch!r} pretrained={pretrained!r}"] if tag_cfg else []
    hf_text = open_clip.get_model_config(config.arch).get("text_cfg", {}).get("hf_model_name")
    if hf_text:
        # transformers fetches the text model's config (and for random weights nothing else) from the Hub.
        needs.append(f"the Hugging Face model {hf_text!r} that the text tower of {config.arch!r} is built from")
    try:
        return _fetch(create, " and ".join(needs), "backbone.pretrained" if tag_cfg else None) if needs else create()
    except UserError:
        raise
    except Exception as exc:
        if pretrained is None or tag_cfg:
            raise
        raise UserError(f"openclip: cannot load checkpoint {pretrained} into {config.arch}: {exc}") from exc


def _fetch(load: Callable[[], Any], what: str, local_key: str | None) -> Any:
    """Run ``load``; a download or cache miss becomes a ``UserError`` that says how to work offline."""
    with hub_offline_when_unreachable() as hub_reached:
        try:
            return load()
        except Exception as exc:
            reason = download_failure(exc)
            if reason is None:
                raise
            raise UserError("openclip: " + offline_help(what, reason, local_key, hub_reached)) from exc
