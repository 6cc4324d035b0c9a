"""Config dataclasses of the builtin components: the schema of each one's recipe section.

Cheap to import (no torch): the registration (:mod:`mmadapt.builtin.plugin`) imports this module
whenever plugins load, and the implementations import their configs from here.

Relative paths in dataset configs are relative to the working directory (``root``) or to ``root``
(the annotation files). Paths inside annotation files are relative to ``root`` and may not leave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from ..config import DataConfig, check_choice

# -- datasets ---------------------------------------------------------------------------------------


def _default_templates() -> list[str]:
    return ["a photo of a {}."]


def _check_templates(templates: list[str]) -> None:
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"data.templates: template {template!r} has no '{{}}' where the class name goes")


@dataclass
class ImageFolderConfig(DataConfig):
    """``root/train/<class>/<image>``, optional ``root/val/`` and ``root/test/`` with the same classes."""

    #: Folder holding ``train/`` (required), ``val/`` and ``test/``.
    root: str = MISSING
    #: Zero-shot prompt templates; ``{}`` is the class name.
    templates: list[str] = field(default_factory=_default_templates)
    #: Optional prompt name per class folder; other folders use their name with ``_`` as a space.
    classnames: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class CoopConfig(DataConfig):
    """CoOp's ``split_zhou_<Name>.json``: ``train``/``val``/``test`` lists of ``[path, label, classname]``."""

    #: Image folder the split file's paths are relative to.
    root: str = MISSING
    #: The split JSON; relative to ``root`` unless absolute.
    split_file: str = MISSING
    templates: list[str] = field(default_factory=_default_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class MultiLabelConfig(DataConfig):
    """Multi-label annotations per split: COCO-style instances JSON, ``path,labels`` CSV, or a
    Pascal VOC image set (``ImageSets/Main/<split>.txt`` with ``Annotations/<id>.xml``).

    Class ids follow the alphabetical order of the class names (the MULTI-LANE convention).
    """

    #: Folder the images are under (VOC: the ``VOC2007`` folder holding ``Annotations/``).
    root: str = MISSING
    #: Annotation files (``.json`` COCO instances, ``.csv``, or a VOC ``.txt`` image set); relative to
    #: ``root`` unless absolute.
    train_file: str = MISSING
    test_file: str = MISSING
    val_file: str | None = None
    #: Subfolders of ``root`` holding each split's images (COCO: ``train2014``, ``val2014``).
    train_images: str = ""
    val_images: str = ""
    test_images: str = ""
    templates: list[str] = field(default_factory=_default_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class Cifar100Config(DataConfig):
    """CIFAR-100 in torchvision's layout: ``root/cifar-100-python/{meta,train,test}`` (the python pickles)."""

    #: Folder holding ``cifar-100-python/`` (or that folder itself).
    root: str = MISSING
    templates: list[str] = field(default_factory=_default_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class ImageNetRConfig(DataConfig):
    """ImageNet-R: ``root/<wnid>/<image>`` (the 200 class folders of ``imagenet-r.tar``), split into train
    and test by a seeded draw, or ``root/train/<wnid>/`` and ``root/test/<wnid>/`` already split."""

    #: Folder holding the class folders (or ``imagenet-r/`` with them, or ``train/`` and ``test/``).
    root: str = MISSING
    #: Share of the images held out for testing when the folder is not split yet (0.2: 80/20).
    test_fraction: float = 0.2
    #: Seed of the train/test draw over every image; the same seed always gives the same split.
    split_seed: int = 0
    templates: list[str] = field(default_factory=_default_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"data.test_fraction must be between 0 and 1; got {self.test_fraction}")


@dataclass
class PairedFoldersConfig(DataConfig):
    """Input and target images matched by file stem: ``root/<split>/<input>/`` and ``root/<split>/<target>/``."""

    #: Folder holding the split folders.
    root: str = MISSING
    #: Subfolder of ``root`` per split; a split is read when its folder exists, ``""`` is ``root``
    #: itself, ``null`` leaves the split out.
    train: str | None = "train"
    val: str | None = "val"
    test: str | None = "test"
    #: Names of the input and target folders inside each split folder (LOL: ``low`` and ``high``).
    input_folder: str = "input"
    target_folder: str = "target"


def _lighting_templates() -> list[str]:
    return ["a {} photo."]


@dataclass
class UnpairedFoldersConfig(DataConfig):
    """Unpaired images labelled by folder: ``root/<split>/<class>/`` (e.g. ``backlit/`` and ``well-lit/``)."""

    root: str = MISSING
    #: As in ``paired-folders``: subfolder of ``root`` per split, ``""`` is ``root``, ``null`` leaves it out.
    train: str | None = "train"
    val: str | None = "val"
    test: str | None = "test"
    #: Class folders in label order; empty: every folder of the training split, sorted.
    classes: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=_lighting_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


# -- backbones -------------------------------------------------------------------------------------


@dataclass
class OpenClipConfig:
    """The recipe's ``backbone:`` section for ``name: openclip``."""

    #: An open_clip architecture (``open_clip.list_models()``), e.g. ``ViT-B-16`` or ``RN50``.
    arch: str = "ViT-B-16"
    #: Required: an open_clip pretrained tag (``openai``, ``laion2b_s34b_b88k`` ...), a local
    #: checkpoint file, or null for random weights (explicit, so a forgotten key never trains on noise).
    pretrained: str | None = MISSING
    #: Where downloaded weights are cached (default: the Hugging Face Hub cache, ``HF_HUB_CACHE``).
    cache_dir: str | None = None
    #: Use QuickGELU activations; null follows the pretrained tag (OpenAI weights need it).
    quick_gelu: bool | None = None

    def __post_init__(self) -> None:
        if not self.arch:
            raise ValueError("backbone.arch must name an open_clip architecture, e.g. ViT-B-16")
        if self.pretrained == "":
            raise ValueError("backbone.pretrained is empty; give a tag, a checkpoint file, or null for random weights")


@dataclass
class TimmConfig:
    """The recipe's ``backbone:`` section for ``name: timm``."""

    #: A timm ViT, optionally with its pretrained tag: ``vit_base_patch16_224.augreg_in21k_ft_in1k``.
    arch: str = "vit_base_patch16_224.augreg_in21k_ft_in1k"
    #: true: the arch's default pretrained weights; false: random weights; a string: that pretrained tag.
    pretrained: bool | str = True
    #: A local checkpoint file; when given, its weights are loaded and nothing is downloaded.
    checkpoint_path: str | None = None
    #: Input size when it differs from the arch's (positional embeddings are resampled).
    img_size: int | None = None
    #: Where downloaded weights are cached (default: the Hugging Face Hub cache, ``HF_HUB_CACHE``).
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.arch:
            raise ValueError("backbone.arch must name a timm ViT, e.g. vit_base_patch16_224")
        if self.pretrained == "":
            raise ValueError("backbone.pretrained is empty; give true, false or a pretrained tag")
        if isinstance(self.pretrained, str) and "." in self.arch:
            raise ValueError(
                f"backbone.arch {self.arch!r} already carries a pretrained tag; "
                f"drop it or drop backbone.pretrained={self.pretrained!r}"
            )
        if self.checkpoint_path is not None and isinstance(self.pretrained, str):
            raise ValueError(
                f"backbone.checkpoint_path and the pretrained tag {self.pretrained!r} both name weights; keep one"
            )
        if self.img_size is not None and self.img_size < 1:
            raise ValueError(f"backbone.img_size must be a positive number of pixels; got {self.img_size}")


# -- adapters --------------------------------------------------------------------------------------


@dataclass
class ZeroShotConfig:
    """Hand-written prompts; several templates are averaged (prompt ensembling)."""

    #: Templates with one ``{}`` for the class name; default: the dataset's templates.
    templates: list[str] | None = None


@dataclass
class LinearProbeConfig:
    """A linear (logistic-regression) head on frozen, L2-normalised image features."""

    #: ``zeros``, or ``zeroshot`` to start from the zero-shot classifier (needs a text tower).
    init: str = "zeros"

    def __post_init__(self) -> None:
        check_choice("adapter", "init", self.init, ("zeros", "zeroshot"))


@dataclass
class LoraConfig:
    """LoRA (HF PEFT) on chosen modules of either tower; classes come from zero-shot text features."""

    tower: str = "vision"
    #: Name suffixes inside the tower: modules (``mlp.c_fc``) get LoRA layers, parameters (``*weight``)
    #: get LoRA parametrisations (``attn.in_proj_weight``: query, key and value of open_clip attention).
    targets: list[str] = field(default_factory=lambda: ["attn.in_proj_weight", "mlp.c_fc", "mlp.c_proj"])
    r: int = 4
    alpha: float = 8.0
    dropout: float = 0.0
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        check_choice("adapter", "tower", self.tower, ("vision", "text", "both"))
        if self.r < 1:
            raise ValueError(f"adapter.r must be a positive LoRA rank; got {self.r}")
        if self.dropout and any(t.endswith("weight") for t in self.targets):
            raise ValueError(
                "adapter.dropout must be 0 when adapter.targets name parameters (*weight): PEFT applies "
                "those as weight parametrisations, which have no input to drop"
            )


@dataclass
class FinetuneConfig:
    """The whole image tower trained under the frozen zero-shot text head (the task-vector recipe)."""

    #: Templates of the zero-shot head, one ``{}`` for the class name; default: the dataset's templates.
    templates: list[str] | None = None


# -- objectives ------------------------------------------------------------------------------------


@dataclass
class CrossEntropyConfig:
    """Softmax cross-entropy on ``logits`` against integer labels."""

    #: Label smoothing of ``torch.nn.functional.cross_entropy``, 0.0 for none.
    label_smoothing: float = 0.0


@dataclass
class BCEConfig:
    """Binary cross-entropy on ``logits`` against multi-hot labels."""

    #: Weight of positive targets (``pos_weight`` of ``BCEWithLogitsLoss``), 1.0 for none.
    pos_weight: float = 1.0


@dataclass
class KgRegularizerConfig:
    """KgCoOp: cross-entropy + weight * (1 - mean cosine to the hand-written prompt features)."""

    #: Weight of the distance term; KgCoOp uses 8.0.
    weight: float = 8.0

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"objective.weight must be non-negative; got {self.weight}")


# -- protocols -------------------------------------------------------------------------------------


@dataclass
class EvalOnlyConfig:
    """``protocol: eval-only``: the split to evaluate."""

    split: str = "test"


@dataclass
class StandardConfig:
    """``protocol: standard``: the split to train on and the one to evaluate."""

    train_split: str = "train"
    test_split: str = "test"
    #: Also evaluate before training (``initial/<split>/<metric>``): the zero-shot starting point of
    #: adapters initialised from hand-written prompts.
    evaluate_initial: bool = False


@dataclass
class Base2NovelConfig:
    """``protocol: base2novel``."""

    evaluate_initial: bool = False


# -- metrics ---------------------------------------------------------------------------------------


@dataclass
class PerClassAccuracyConfig:
    """Options of ``per-class-accuracy``."""

    #: Also report ``class_<k>_accuracy`` for every class with test samples.
    per_class: bool = False


@dataclass
class MapConfig:
    """Options of ``map``."""

    #: Class ids to score (the seen classes); ``None`` scores every class.
    classes: list[int] | None = None


@dataclass
class F1Config:
    """Options of ``f1``."""

    #: A class is predicted when its sigmoid score is at least this (MULTI-LANE: 0.8).
    threshold: float = 0.8
    #: Class ids to score (the seen classes); ``None`` scores every class.
    classes: list[int] | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"f1.threshold must be between 0 and 1 (a sigmoid score); got {self.threshold}")


@dataclass
class PsnrConfig:
    """Options of ``psnr``."""

    #: ``rgb`` scores all three channels (key ``psnr``); ``y`` the BT.601 luma only (key ``psnr_y``).
    channel: str = "rgb"

    def __post_init__(self) -> None:
        check_choice("psnr", "channel", self.channel, ("rgb", "y"))
