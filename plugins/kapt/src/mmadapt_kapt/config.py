"""The ``kapt`` adapter's recipe section. Cheap to import: a dataclass and its checks."""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt import check_choice, check_prompt_context


@dataclass
class KaptConfig:
    """KAPT: discrete and continuous knowledge prompts and an adaptation head; every part can be switched off."""

    #: Keywords per class in the discrete prompt (the first k of the ranked keywords).
    keywords: int = 2
    #: Discrete prompt with keywords; ``{class}`` and ``{keywords}`` (joined by ", ") are filled in.
    template: str = "a photo of a {class}, which has {keywords}."
    #: Discrete prompt when a class has no keywords left (none ranked, or all dropped to fit 77 tokens).
    template_without_keywords: str = "a photo of a {class}."
    #: Context tokens of the continuous prompt; null: the BPE tokens of ``init``.
    n_ctx: int | None = None
    #: Words that start the context.
    init: str | None = "a photo of a"
    #: The discrete branch (its logits weigh ``beta``); false: logits of the continuous prompt alone.
    discrete: bool = True
    #: The class-conditioned bias of the continuous prompt (description feature through an MLP).
    knowledge_bias: bool = True
    #: The adaptation head on the image side; false: CLIP's image feature.
    head: bool = True
    #: The head's projection: ``learned`` (started from CLIP's) or ``frozen`` (CLIP's own).
    head_proj: str = "learned"
    #: Weight of the head's feature in the blend with CLIP's image feature.
    alpha: float = 0.2
    #: Weight of the discrete prompt's cosine in the logits.
    beta: float = 0.5
    #: Targets of ``kg-regularizer``: the dataset's zero-shot ``templates`` or the ``discrete`` prompts.
    kg_target: str = "templates"

    def __post_init__(self) -> None:
        check_prompt_context(self.n_ctx, self.init, "end")
        check_choice("adapter", "head_proj", self.head_proj, ("learned", "frozen"))
        check_choice("adapter", "kg_target", self.kg_target, ("templates", "discrete"))
        if self.keywords < 0:
            raise ValueError(f"adapter.keywords is a number of keywords per class, 0 or more; got {self.keywords}")
        for key in ("alpha", "beta"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"adapter.{key} is a blend weight between 0 and 1; got {getattr(self, key)}")
        if "{class}" not in self.template or "{keywords}" not in self.template:
            raise ValueError("adapter.template needs both {class} and {keywords}, e.g. "
                             "'a photo of a {class}, which has {keywords}.'")
        if "{class}" not in self.template_without_keywords:
            raise ValueError("adapter.template_without_keywords needs {class}, e.g. 'a photo of a {class}.'")
