"""An exported adapter, ready to use: :func:`load_adapter` and the module it returns.

No dataset is read: class names, templates and preprocessing come from ``config.json``; the base
backbone is rebuilt by its registered name and config and must hash to the weights it was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .adapter import Adapter
from .errors import UserError
from .export import CONFIG, FILES, FORMAT, FORMAT_VERSION, WEIGHTS, state_sha256
from .hub import download_failure, hub_offline_when_unreachable, offline_help

HUB_PREFIX = "hf-hub:"

#: One image: a file path, a PIL image or an ``(H, W, 3)`` uint8 array.
ImageInput = Any


class LoadedAdapter(nn.Module):
    """An exported adapter on its rebuilt backbone, in eval mode: classify, score or enhance images.

    Images are file paths, PIL images or ``(H, W, 3)`` uint8 arrays (one, or a list); they are
    prepared with the exported preprocessing. A tensor is taken as already prepared: for classifiers
    a ``(B, 3, S, S)`` normalised batch, for enhancers RGB pixels in [0, 1]. Move the module with
    ``.to(device)``.
    """

    def __init__(self, adapter: Adapter, config: dict[str, Any], folder: Path) -> None:
        """Wrap a built adapter with its export's ``config.json`` contents (``folder``: where it was read)."""
        super().__init__()
        self.adapter = adapter.eval()
        #: The export's ``config.json``.
        self.config = config
        #: The folder the export was read from.
        self.folder = folder
        self._transform = _classification_transform(config["preprocessing"])

    @property
    def classnames(self) -> list[str]:
        """The class names the adapter scores, in logit order."""
        return list(self.adapter.task.classnames)

    @property
    def is_enhancer(self) -> bool:
        """Whether the adapter turns images into images (an image-to-image task)."""
        return self.adapter.task.kind == "image-to-image"

    @torch.no_grad()
    def logits(self, images: ImageInput | Sequence[ImageInput] | torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)``, in the order of :attr:`classnames`."""
        self._require_classifier("logits")
        outputs = self.adapter({"image": self._pixels(images)})
        return outputs["logits"]

    def classify(self, images: ImageInput | Sequence[ImageInput] | torch.Tensor) -> list[str]:
        """The top class name of each image."""
        self._require_classifier("classify")
        return [self.classnames[i] for i in self.logits(images).argmax(dim=-1).tolist()]

    def top_classes(self, images: ImageInput | Sequence[ImageInput] | torch.Tensor,
                    k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` best classes of each image with their probability (softmax; sigmoid for multi-label tasks)."""
        logits = self.logits(images).float()
        scores = logits.sigmoid() if self.adapter.task.multi_label else logits.softmax(dim=-1)
        values, indices = scores.topk(min(k, scores.shape[-1]), dim=-1)
        return [[(self.classnames[i], float(v)) for v, i in zip(row_v.tolist(), row_i.tolist())]
                for row_v, row_i in zip(values, indices)]

    def set_classnames(self, names: Sequence[str], knowledge: dict[str, str] | None = None) -> None:
        """Score these classes from now on: methods that build classes from text encode the new names.

        ``knowledge`` gives a description per class for methods that need one (KAPT). A method whose
        weights are per class (a linear head) cannot, and says so with a ``UserError``.
        """
        self._require_classifier("set_classnames")
        names = [str(name) for name in names]
        if not names:
            raise UserError("set_classnames needs at least one class name")
        current = self.adapter.task
        task = type(self.adapter).task_from_export({
            "classnames": names, "kind": current.kind, "templates": list(current.templates),
            "knowledge": knowledge, "name": current.name,
        })
        try:
            self.adapter.set_task(task)
        except UserError as exc:
            method = self.config["method"]
            raise UserError(f"the exported {method} adapter cannot take new class names: {exc}") from None

    @torch.no_grad()
    def enhance(self, images: ImageInput | Sequence[ImageInput] | torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Enhanced images, RGB in [0, 1] at the input's size: ``(B, 3, H, W)``, or a list when sizes differ."""
        if not self.is_enhancer:
            raise UserError(f"the exported {self.config['method']} adapter classifies images; use classify or logits")
        return self.adapter({"image": self._pixels(images)})["images"]

    def forward(self, images: ImageInput | Sequence[ImageInput] | torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """:meth:`enhance` for an enhancer, :meth:`logits` otherwise."""
        return self.enhance(images) if self.is_enhancer else self.logits(images)

    def _require_classifier(self, what: str) -> None:
        if self.is_enhancer:
            raise UserError(f"the exported {self.config['method']} adapter enhances images; {what} is for "
                            "classifiers: use enhance(images)")

    def _pixels(self, images: Any) -> torch.Tensor | list[torch.Tensor]:
        device = next(self.adapter.parameters(), torch.empty(0)).device
        if isinstance(images, torch.Tensor):
            return images.to(device)
        items = [images] if isinstance(images, (str, Path)) or not isinstance(images, Sequence) else list(images)
        if not items:
            raise UserError("no images given; pass image files, PIL images or arrays")
        pictures = [_open(item) for item in items]
        if self.is_enhancer:
            from torchvision.transforms.functional import to_tensor

            tensors = [to_tensor(picture).to(device) for picture in pictures]
            same_size = len({tuple(t.shape) for t in tensors}) == 1
            return torch.stack(tensors) if same_size else tensors
        return torch.stack([self._transform(picture) for picture in pictures]).to(device)


def load_adapter(source: str | Path, *, device: str | torch.device | None = None) -> LoadedAdapter:
    """Load an adapter written by ``adapt export``: a folder, or ``"hf-hub:ORG/NAME"`` on the Hugging Face Hub.

    The base backbone is rebuilt by its registered name and config (pretrained weights download as
    for a run) and refused when its weights' SHA-256 differs from the export's; the adapter is built
    for the exported task and given the exported weights. Returns a :class:`LoadedAdapter` in eval
    mode, on ``device`` (default: the CPU). The plugins of the backbone and the method must be
    installed; no dataset is needed.
    """
    from safetensors.torch import load_file

    from .recipe import validate_section

    folder = _local_folder(str(source))
    config_file = folder / CONFIG
    config = _read_config(config_file)
    where = str(config_file)
    backbone_section = validate_section("backbone", config["backbone"]["section"], where=f"{where}: backbone")
    adapter_entry = {**config["adapter"], **_local_files(config, folder)}
    adapter_section = validate_section("adapter", adapter_entry, where=f"{where}: adapter")
    # Building draws initial values that the exported weights replace; the caller's random state is kept.
    with torch.random.fork_rng(devices=[]):
        backbone = backbone_section.build()
        found = state_sha256(backbone.state_dict())
        expected = config["backbone"]["weights_sha256"]
        if found != expected:
            raise UserError(
                f"{where}: the backbone {backbone.name} built here has other weights (SHA-256 {found[:12]}) than the "
                f"one this adapter was trained on ({expected[:12]}); install the versions named in the file's "
                "'versions' or get the same pretrained weights"
            )
        factory = adapter_section.component.load()
        rebuild_task = getattr(factory, "task_from_export", Adapter.task_from_export)
        adapter = adapter_section.build(backbone, rebuild_task(config["task"]))
    try:
        adapter.load_trainable_state_dict(load_file(str(folder / WEIGHTS)))
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"{folder / WEIGHTS}: the weights do not fit the {config['method']} adapter built from "
                        f"{where} ({exc})") from None
    return LoadedAdapter(adapter, config, folder).to(device or "cpu")


def _local_folder(source: str) -> Path:
    """The exported folder on disk; a Hub repository is downloaded (or taken from the cache) first."""
    if not source.startswith(HUB_PREFIX):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder; load_adapter takes a folder written by `adapt export` "
                            f"or {HUB_PREFIX}ORG/NAME")
        return folder
    repo = source[len(HUB_PREFIX):]
    from huggingface_hub import snapshot_download

    with hub_offline_when_unreachable() as hub_reached:
        try:
            return Path(snapshot_download(repo_id=repo))
        except Exception as exc:
            reason = download_failure(exc)
            if reason is None:
                raise
            raise UserError(offline_help(f"the exported adapter {repo!r}", reason, None, hub_reached)) from None


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path.parent}: no {CONFIG}; this is not a folder written by `adapt export`")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if config.get("format") != FORMAT:
        raise UserError(f"{path}: format {config.get('format')!r} is not {FORMAT!r}; write it with `adapt export`")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: format version {config['format_version']} is newer than this mmadapt reads "
                        f"({FORMAT_VERSION}); upgrade mmadapt")
    return config


def _local_files(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The adapter's file keys pointed at the copies inside ``folder``."""
    files = {}
    for key in config.get("files", []):
        value = config["adapter"][key]
        paths = [str(folder / item) for item in ([value] if isinstance(value, str) else value)]
        files[key] = paths[0] if isinstance(value, str) else paths
        missing = [path for path in paths if not Path(path).is_file()]
        if missing:
            raise UserError(f"{folder / CONFIG}: adapter.{key} names {missing[0]}, which the folder lacks "
                            f"(exported files live under {FILES}/)")
    return files


def _classification_transform(preprocessing: dict[str, Any]) -> Any:
    from .backbone import Preprocessing
    from .data import build_transforms

    prep = Preprocessing(**{**preprocessing, "mean": tuple(preprocessing["mean"]), "std": tuple(preprocessing["std"])})
    return build_transforms(prep)[1]


def _open(item: Any) -> Any:
    from PIL import Image

    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if hasattr(item, "__array_interface__"):  # an (H, W, 3) uint8 array, as numpy and PIL exchange them
        return Image.fromarray(item).convert("RGB")
    path = Path(item)
    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as exc:
        raise UserError(f"{path}: cannot be read as an image ({exc})") from None
