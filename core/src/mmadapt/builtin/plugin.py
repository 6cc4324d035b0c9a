"""Registration of the builtin components, by reference: each module is imported when a recipe builds it.

Registered through the same path as third-party plugins; the configs live in :mod:`mmadapt.builtin.config`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from .config import (
    Base2NovelConfig,
    BCEConfig,
    Cifar100Config,
    CoopConfig,
    CrossEntropyConfig,
    EvalOnlyConfig,
    F1Config,
    FinetuneConfig,
    ImageFolderConfig,
    ImageNetRConfig,
    KgRegularizerConfig,
    LinearProbeConfig,
    LoraConfig,
    MapConfig,
    MultiLabelConfig,
    OpenClipConfig,
    PairedFoldersConfig,
    PerClassAccuracyConfig,
    PsnrConfig,
    StandardConfig,
    TimmConfig,
    UnpairedFoldersConfig,
    ZeroShotConfig,
)


@hookimpl
def register_backbones(register: Callable[..., None]) -> None:
    """Register the ``openclip`` and ``timm`` backbones."""
    register(
        "openclip",
        "mmadapt.builtin.openclip:OpenClipBackbone.from_config",
        OpenClipConfig,
        "any open_clip CLIP (ViT or ResNet image tower) with a pretrained tag, a local checkpoint or random weights",
    )
    register(
        "timm",
        "mmadapt.builtin.timm_vit:TimmBackbone.from_config",
        TimmConfig,
        "an image-only timm ViT (image features, tokens, prompts and prefixes; no text tower)",
    )


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    """Register the builtin datasets."""
    register("imagefolder", "mmadapt.builtin.image_datasets:build_imagefolder", ImageFolderConfig,
             "Images in root/{train,val,test}/<class>/ folders")
    register("coop-split", "mmadapt.builtin.image_datasets:build_coop", CoopConfig,
             "CoOp/Dassl split_zhou_<Name>.json over an image folder")
    register("multilabel", "mmadapt.builtin.image_datasets:build_multilabel", MultiLabelConfig,
             "Multi-label images from COCO-style JSON, CSV files or a Pascal VOC layout")
    register("cifar100", "mmadapt.builtin.standard_datasets:build_cifar100", Cifar100Config,
             "CIFAR-100 from torchvision's cifar-100-python/ pickles (100 classes, 50,000 / 10,000 images)")
    register("imagenet-r", "mmadapt.builtin.standard_datasets:build_imagenet_r", ImageNetRConfig,
             "ImageNet-R's 200 class folders, split into train and test by a seeded draw (80/20)")
    register("paired-folders", "mmadapt.builtin.folder_pairs:build_paired_folders", PairedFoldersConfig,
             "Image-to-image pairs: input/ and target/ folders matched by file stem")
    register("unpaired-folders", "mmadapt.builtin.folder_pairs:build_unpaired_folders", UnpairedFoldersConfig,
             "Unpaired full-resolution images labelled by folder (e.g. backlit/ and well-lit/)")


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register the builtin adapters ``zeroshot``, ``linear-probe``, ``lora`` and ``finetune``."""
    register("zeroshot", "mmadapt.builtin.baselines:ZeroShot", ZeroShotConfig,
             "zero-shot CLIP with hand-written (ensembled) prompts")
    register("linear-probe", "mmadapt.builtin.baselines:LinearProbe", LinearProbeConfig,
             "logistic head on frozen image features")
    register("lora", "mmadapt.builtin.baselines:Lora", LoraConfig, "PEFT LoRA on attention/MLP layers of either tower")
    register("finetune", "mmadapt.builtin.baselines:Finetune", FinetuneConfig,
             "the whole image tower trained under the frozen zero-shot text head")


@hookimpl
def register_objectives(register: Callable[..., None]) -> None:
    """Register the builtin objectives."""
    register("cross-entropy", "mmadapt.builtin.objectives:build_cross_entropy", CrossEntropyConfig,
             "softmax cross-entropy on logits")
    register("bce", "mmadapt.builtin.objectives:build_bce", BCEConfig,
             "binary cross-entropy with logits, for multi-label tasks")
    register("kg-regularizer", "mmadapt.builtin.kg:build_kg_regularizer", KgRegularizerConfig,
             "KgCoOp: cross-entropy + pull of learned text features toward hand-written prompt features")


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register ``eval-only``, ``standard`` and ``base2novel``."""
    register("eval-only", "mmadapt.builtin.standard_protocols:EvalOnlyProtocol", EvalOnlyConfig,
             "evaluate only, no training")
    register("standard", "mmadapt.builtin.standard_protocols:StandardProtocol", StandardConfig,
             "train on the train split, evaluate on the test split")
    register("base2novel", "mmadapt.builtin.standard_protocols:Base2NovelProtocol", Base2NovelConfig,
             "train on the first half of the classes, evaluate base and new classes, report the harmonic mean")


@hookimpl
def register_metrics(register: Callable[..., None]) -> None:
    """Register the builtin metrics."""
    register("accuracy", "mmadapt.metrics:Accuracy.from_config", None, "Top-1 accuracy (%)")
    register("per-class-accuracy", "mmadapt.metrics:PerClassAccuracy.from_config", PerClassAccuracyConfig,
             "Mean per-class accuracy (%)")
    register("map", "mmadapt.metrics:MeanAveragePrecision.from_config", MapConfig,
             "Multi-label mean average precision over classes with positives (%)")
    register("f1", "mmadapt.metrics:F1.from_config", F1Config,
             "Multi-label CF1/OF1 (and CP/CR/OP/OR) at a sigmoid threshold (%)")
    register("psnr", "mmadapt.metrics:PeakSignalNoiseRatio.from_config", PsnrConfig,
             "Mean PSNR of outputs['images'] against batch['target'] (dB, cap 100)")
    register("ssim", "mmadapt.metrics:StructuralSimilarity.from_config", None,
             "Mean SSIM of outputs['images'] against batch['target'] (1 = identical)")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``data`` (our image-folder data path against torchvision's loop) and ``gpu`` (every method's
    training step on a GPU, ``benchmarks/gpu.sh``)."""
    register("data", "mmadapt.builtin.data_bench:main",
             "images/s of the imagefolder dataset's batches against torchvision ImageFolder + DataLoader",
             add_arguments="mmadapt.builtin.data_bench:add_arguments")
    register("gpu", "mmadapt.builtin.gpu_bench:main",
             "training steps of every method on ViT-B/16, bf16 and fp32, with and without torch.compile: "
             "time, memory, MFU (JSON)", add_arguments="mmadapt.builtin.gpu_bench:add_arguments")
