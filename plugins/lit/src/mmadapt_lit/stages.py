"""Pieces both lit protocols are made of: frozen passes, the identity warm-up with its restart rule, objectives.

Everything goes through the Run API: ``run.fit`` stages (named, resumable), ``run.features`` passes
and ``run.state`` for what a later stage or a resumed run needs again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from mmadapt import Split, image_psnr

from .config import StageConfig
from .losses import guidance_loss

#: Training items whose Y-PSNR(input, output) decides the warm-up restart (CLIP-LIT: a 30-iteration mean).
RESTART_PROBE_ITEMS = 30


def cycled(rows: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` rows of ``rows``, repeated from the start when there are fewer (unpaired sets differ in size)."""
    return rows[torch.arange(count) % len(rows)]


def preprocessed_features(run, split: Split, key: str = "image") -> torch.Tensor:
    """Unit-norm image features (N, D) of ``batch[key]`` under the backbone's own preprocessing.

    Each image is resized on its shorter side with the backbone's interpolation (CLIP: bicubic),
    antialiased, centre-cropped and normalised, as RAVE embeds its training images for the residual.
    """
    from torchvision import transforms as T

    adapter = run.adapter
    adapter.eval()
    prep = adapter.backbone.preprocessing
    interpolation = T.InterpolationMode(getattr(prep, "interpolation", "bicubic"))
    resize = int(prep.size / getattr(prep, "crop_pct", 1.0))
    view = T.Compose([T.Resize(resize, interpolation=interpolation, antialias=True), T.CenterCrop(prep.size)])

    def embed(batch: dict) -> dict:
        # Bicubic overshoots; clamping keeps the pixels a decoded image would have.
        pixels = torch.stack([view(image).clamp(0.0, 1.0) for image in batch[key]])
        return {"features": adapter.embed(pixels)}

    return run.features(split, embed, desc=f"features (preprocessed {key})")["features"]


def identity_objective(adapter, weight: float, level_weights: list[float], parts: int = 1) -> Callable:
    """``weight * L_id`` between the network's outputs and its inputs.

    L_id sums over the batch's images, so when the batch's gradient is the average of ``parts``
    parts' (``run.batch_parts``: data-parallel processes, or exact shards), each holding its share of
    the batch, it counts ``parts`` times: the gradient of the whole batch's sum, as in one part.
    """

    def objective(outputs: dict, batch: dict):
        identity = adapter.identity(outputs["images"], batch["image"], level_weights)
        return weight * parts * identity, {"identity": identity}

    return objective


def rave_objective(adapter, guidance_weight: float, identity_weight: float, parts: int = 1) -> Callable:
    """RAVE's enhancement loss ``guidance_weight * L_guid + identity_weight * L_id`` (L_id summed over
    the images, counted ``parts`` times as in :func:`identity_objective`)."""

    def objective(outputs: dict, batch: dict):
        guidance = guidance_loss(adapter.embed(outputs["images"]), adapter.residual, adapter.residual_target)
        identity = adapter.identity(outputs["images"], batch["image"])
        loss = guidance_weight * guidance + identity_weight * parts * identity
        return loss, {"guidance": guidance, "identity": identity}

    return objective


def warm_up(run, split: Split, config: StageConfig) -> None:
    """CLIP-LIT's identity warm-up: ``warmup_identity_weight * L_id`` (every level weighted 1) on ``split``.

    With the restart rule on, the first ``restart_check_iterations`` run as stage ``warmup-try<k>``;
    when the mean Y-PSNR(input, output) of the first training images is then below ``restart_psnr``,
    the network is re-initialised from a new seed and tried again (at most ``max_restarts`` times).
    The remaining iterations are stage ``warmup``. The PSNR of each try is kept in ``run.state``.
    """
    adapter = run.adapter
    objective = identity_objective(adapter, config.warmup_identity_weight, [1.0] * len(adapter.levels),
                                   run.batch_parts)
    fit = dict(groups=["network"], objective=objective, batch_size=config.warmup_batch_size)
    check = min(config.restart_check_iterations, config.warmup_iterations)
    tried = 0
    if check and config.max_restarts:
        probe = split.subset(range(min(RESTART_PROBE_ITEMS, len(split))))
        for attempt in range(config.max_restarts + 1):
            run.fit(split, stage=f"warmup-try{attempt}", iterations=check, **fit)
            tried = check
            psnr = mean_identity_psnr(run, probe)
            run.state[f"warmup/try{attempt}_psnr_y"] = psnr
            if psnr >= config.restart_psnr or attempt == config.max_restarts:
                break
            adapter.reset_network(seed=run.seed * 1000 + attempt + 1)
    if config.warmup_iterations > tried:
        run.fit(split, stage="warmup", iterations=config.warmup_iterations - tried, **fit)


def mean_identity_psnr(run, split: Split) -> float:
    """The mean Y-PSNR (dB) of the network's outputs against its inputs over ``split``."""
    adapter = run.adapter
    adapter.eval()

    def psnr(batch: dict) -> dict:
        images = batch["image"]
        outputs = adapter.enhance(images)
        return {"psnr": torch.tensor([image_psnr(out.detach(), ref, "y") for out, ref in zip(outputs, images)])}

    return float(run.features(split, psnr, desc="warm-up check")["psnr"].mean())
