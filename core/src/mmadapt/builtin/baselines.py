"""Zero-shot CLIP, linear probe, LoRA and full image-tower fine-tuning adapters."""

from __future__ import annotations

import copy
import re
from typing import Any

import torch
from torch import nn

from mmadapt.adapter import Adapter, encode_batch_images
from mmadapt.backbone import Backbone
from mmadapt.data import Task
from mmadapt.errors import UserError
from mmadapt.zeroshot import ZeroShotClasses, zeroshot_classifier


class ZeroShot(ZeroShotClasses, Adapter):
    """CLIP's zero-shot classifier: cosine similarity to hand-written prompt features."""

    frozen_image_features = True
    paper = "Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021"

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        self.set_task(task)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``logits``: ``logit_scale`` times the cosine of image and class features; ``features``."""
        features = self.image_features(batch)
        logits = self.backbone.logit_scale * features @ self.class_embeddings.to(features.dtype).t()
        return {"logits": logits, "features": features}


class LinearProbe(Adapter):
    """A linear head on frozen, normalised image features (logistic regression with the engine's decay)."""

    frozen_image_features = True
    paper = "Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021"

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        self.head = nn.Linear(backbone.embed_dim, len(task.classnames))
        with torch.no_grad():
            if config.init == "zeroshot":
                weights = zeroshot_classifier(backbone, task.classnames, task.templates)
                self.head.weight.copy_(weights * backbone.logit_scale.detach())
            else:
                self.head.weight.zero_()
            self.head.bias.zero_()

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``logits`` of the linear head on the normalised image ``features``."""
        features = self.image_features(batch)
        return {"logits": self.head(features), "features": features}


class Lora(Adapter):
    """LoRA (HF PEFT) injected into the chosen tower's blocks; classes are zero-shot text features."""

    paper = "Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022"

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        from peft import LoraConfig, inject_adapter_in_model

        modules = [t for t in config.targets if not t.endswith("weight")]
        parameters = [t for t in config.targets if t.endswith("weight")]
        peft_config = LoraConfig(
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            # A regex, so an empty module list targets nothing instead of PEFT's defaults.
            target_modules=rf".*\.(?:{'|'.join(re.escape(m) for m in modules)})$" if modules else "(?!)",
            target_parameters=parameters or None,
        )
        towers = {"vision": backbone.image.module}
        if backbone.text is not None:
            towers["text"] = backbone.text.module
        for name in ("vision", "text") if config.tower == "both" else (config.tower,):
            if name not in towers:
                raise UserError(f"adapter.tower={config.tower!r}, but backbone has only {sorted(towers)} towers")
            try:
                inject_adapter_in_model(peft_config, towers[name])
            except ValueError as exc:
                raise UserError(f"adapter.targets {config.targets} do not fit the {name} tower: {exc}") from None
        for name, param in backbone.named_parameters():
            param.requires_grad_("lora_" in name)
        self.adapts_text = config.tower in ("text", "both")
        self.frozen_image_features = config.tower == "text"
        self.templates = config.templates or task.templates

    def set_task(self, task: Task) -> None:
        """Switch to ``task``'s classes; their text features are encoded again on next use."""
        self.task = task
        self.clear_eval_cache()

    def class_embeddings(self) -> torch.Tensor:
        """Normalised text features of the classes, through the adapted text tower when it trains.

        A frozen text tower encodes them once; a trained one on every training step (with gradients)
        and once per evaluation.
        """

        def compute() -> torch.Tensor:
            return zeroshot_classifier(self.backbone, self.task.classnames, self.templates)

        return self.cached_in_eval("classes", compute) if self.adapts_text else self.cached("classes", compute)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``logits``: ``logit_scale`` times the cosine of (adapted) image and class features; ``features``."""
        if self.frozen_image_features:
            features = self.image_features(batch)
        else:
            features = self.backbone.encode_image(batch["image"], normalize=True)
        classes = self.class_embeddings().to(features.dtype)
        return {"logits": self.backbone.logit_scale * features @ classes.t(), "features": features}

    def merged_backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone model's weights with every LoRA update merged in (PEFT's ``merge``), under its plain names."""
        model = _plain_model(self.backbone, "lora")
        merged = copy.deepcopy(model)
        with torch.no_grad():
            for layer in merged.modules():
                if hasattr(layer, "lora_A") and hasattr(layer, "merge"):
                    layer.merge()
        # PEFT keeps a wrapped layer's own weights under ``base_layer``; the plain model has them one level up.
        return {name.replace(".base_layer.", "."): tensor.detach()
                for name, tensor in merged.state_dict().items() if "lora_" not in name}


class Finetune(ZeroShotClasses, Adapter):
    """Every parameter of the image tower trains; classes are the frozen zero-shot text features.

    The recipe of task vectors (Ilharco et al., 2023; aTLAS): the text head stays the pre-trained
    model's, so the fine-tuned image tower minus the pre-trained one is a vector in weight space that
    composes with others over the same base. AdamW with a low learning rate and weight decay suits it.
    """

    paper = "Ilharco et al., Editing Models with Task Arithmetic, ICLR 2023"

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        backbone.require_text_tower("adapter finetune classifies with zero-shot text features",
                                    "use a CLIP backbone, or linear-probe for an image-only model")
        for param in backbone.image.parameter_blocks().values():
            param.requires_grad_(True)
        self.set_task(task)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """One group, ``image``: every parameter of the image tower."""
        return {"image": [p for p in self.backbone.image.parameter_blocks().values() if p.requires_grad]}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``logits``: ``logit_scale`` times the cosine of the tuned image features and the class features."""
        features = encode_batch_images(self.backbone, batch["image"], self.task.kind)
        features = features / features.norm(dim=-1, keepdim=True)
        logits = self.backbone.logit_scale * features @ self.class_embeddings.to(features.dtype).t()
        return {"logits": logits, "features": features}

    def merged_backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone model's weights, its fine-tuned image tower included."""
        return {name: tensor.detach() for name, tensor in _plain_model(self.backbone, "finetune").state_dict().items()}


def _plain_model(backbone: Backbone, adapter: str) -> nn.Module:
    """The library model a backbone wraps (open_clip's CLIP, timm's ViT), whose weights a merge writes."""
    model = getattr(backbone, "model", None)
    if not isinstance(model, nn.Module):
        raise UserError(f"adapter {adapter} cannot merge into backbone {backbone.name}: it wraps no plain model "
                        "whose weights could be written; export without --merge")
    return model
