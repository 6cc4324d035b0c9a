"""Builtin backbones: ``openclip`` (any open_clip CLIP) and ``timm`` (timm ViTs).

Importing this module is cheap: torch, open_clip and timm are imported by the factories only.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from omegaconf import MISSING

from mmadapt.hookspecs import hookimpl

#: Modules whose exceptions mean "could not fetch from the network or the download cache".
_DOWNLOAD_ERROR_MODULES = ("huggingface_hub", "httpx", "requests", "urllib3")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
HUB_PROBE_TIMEOUT_S = 3.0


HUB_PROBE_REUSE_S = 60.0
_probes: dict[str, tuple[float, bool]] = {}
# The offline switch is global to huggingface_hub; loads that may flip it run one at a time.
_HUB_SWITCH = threading.Lock()


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds (plus the time
    name resolution takes); the answer is reused for a minute, so building several backbones probes
    once.

    Behind a proxy the direct connection says nothing, so the Hub is then assumed reachable.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    checked_at, reachable = _probes.get(endpoint, (-math.inf, False))
    if time.monotonic() - checked_at < HUB_PROBE_REUSE_S:
        return reachable
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        reachable = True
    except OSError:
        reachable = False
    _probes[endpoint] = (time.monotonic(), reachable)
    return reachable


@contextmanager
def hub_offline_when_unreachable() -> Iterator[bool]:
    """Download from the Hugging Face Hub only if it can be reached; yields whether it can.

    Without a network huggingface_hub retries for about a minute before it gives up, even for files
    it has cached. When the Hub does not answer within a few seconds, this switches it to offline mode
    for the duration: cached files load at once and missing ones fail at once.
    """
    from huggingface_hub import constants

    with _HUB_SWITCH:
        if constants.HF_HUB_OFFLINE or hub_reachable(constants.ENDPOINT):
            yield True
            return
        constants.HF_HUB_OFFLINE = True
        try:
            yield False
        finally:
            constants.HF_HUB_OFFLINE = False


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


def build_openclip(config: OpenClipConfig) -> Any:
    """Build an ``OpenClipBackbone`` from its recipe section."""
    from .openclip import OpenClipBackbone

    return OpenClipBackbone.from_config(config)


def build_timm(config: TimmConfig) -> Any:
    """Build a ``TimmBackbone`` from its recipe section."""
    from .timm_vit import TimmBackbone

    return TimmBackbone.from_config(config)


def download_failure(exc: BaseException) -> BaseException | None:
    """The innermost network or download-cache error behind ``exc``, or None if there is none."""
    found = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) or type(current).__module__.startswith(_DOWNLOAD_ERROR_MODULES):
            found = current
        current = current.__cause__ or current.__context__
    return found


def offline_help(what: str, reason: BaseException, local_key: str | None, hub_reached: bool = True) -> str:
    """A message for files that could not be downloaded, with the ways to run offline.

    ``local_key`` is the recipe key that loads a local checkpoint instead, if there is one.
    """
    detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    if not hub_reached:
        from huggingface_hub import constants

        detail = f"the Hugging Face Hub cannot be reached ({constants.ENDPOINT}) and the files are not cached"
    local = f"  - load a local checkpoint file instead: {local_key}=/path/to/checkpoint, or\n" if local_key else ""
    return (
        f"cannot get {what}: {detail}\n"
        "Pretrained files are downloaded on first use and cached (Hugging Face Hub cache: HF_HUB_CACHE, "
        "or backbone.cache_dir). Without a network, either\n"
        f"{local}"
        "  - fetch them once on a machine with a network (run the same recipe there), copy the cache "
        "here and point HF_HUB_CACHE (or backbone.cache_dir) at it."
    )


@hookimpl
def register_backbones(register: Any) -> None:
    """Register the ``openclip`` and ``timm`` backbones."""
    register(
        "openclip",
        build_openclip,
        OpenClipConfig,
        "any open_clip CLIP (ViT or ResNet image tower) with a pretrained tag, a local checkpoint or random weights",
    )
    register(
        "timm",
        build_timm,
        TimmConfig,
        "an image-only timm ViT (image features, tokens, prompts and prefixes; no text tower)",
    )
