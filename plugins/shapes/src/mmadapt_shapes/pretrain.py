"""Contrastive (CLIP) pretraining of ``shapes-clip`` on generated ShapesWorld pairs.

The loss is the symmetric CLIP loss with a learnable temperature, plus (weight ``shape_loss``) a
shape-classification term: cross-entropy of a linear head on the image embedding against the
normalised multi-hot vector of the shapes present. From scratch,
colour, lighting and background are matched long before shape; the auxiliary term makes the image
tower learn shape early, and the contrastive term then aligns the shape words with it. The head is
training-only and is not part of the saved weights.

Each step's batch is a pure function of (seed, step, batch size) and the learning rate is computed
from the step, so a resumed run continues exactly where the checkpoint left off.

Run in the background with, e.g.::

    adapt shapes pretrain --out runs/shapes-clip --steps 3600 --batch-size 128
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmadapt import draw_training_curves

from .model import count_parameters, create_model, encode_text_trimmed, get_tokenizer, images_to_tensor
from .pairs import pretrain_batch
from .world import SHAPES

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.safetensors"
SETTINGS = "settings.json"
LOG = "train.log"
METRICS = "metrics.jsonl"

#: Settings that change the result; a resumed run must match the checkpoint on all of them.
_SCHEDULE_KEYS = ("steps", "batch_size", "lr", "seed", "warmup", "weight_decay", "image_size", "shape_loss")


@dataclass
class PretrainSettings:
    """Hyper-parameters of one pretraining run."""

    steps: int = 3600
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    warmup: int = 150
    weight_decay: float = 0.1
    image_size: int = 64
    shape_loss: float = 1.0
    checkpoint_every: int = 100
    log_every: int = 10


def lr_at(step: int, s: PretrainSettings) -> float:
    """Linear warmup, then cosine decay to zero."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return 0.5 * s.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only; gains, biases, embeddings of size 1 and the logit scale are exempt."""
    decay, exempt = [], []
    for name, p in model.named_parameters():
        (exempt if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def save_weights(model: Any, path: Path, half: bool = True) -> None:
    """Write the model state dict as safetensors (fp16 by default to keep the file small)."""
    from safetensors.torch import save_file

    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
             for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


def pretrain(
    out_dir: str | Path,
    steps: int = 3600,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    resume: bool = True,
    device: str = "auto",
    threads: int | None = None,
    warmup: int = 150,
    weight_decay: float = 0.1,
    shape_loss: float = 1.0,
    checkpoint_every: int = 100,
    log_every: int = 10,
    export_to: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Pretrain ``shapes-clip`` and return the path of the final ``weights.safetensors``.

    ``out_dir`` receives ``checkpoint.pt`` (model, optimiser, step; rewritten atomically every
    ``checkpoint_every`` steps), ``train.log`` and ``metrics.jsonl`` (one record per ``log_every``
    steps), and at the end ``weights.safetensors``, ``settings.json`` and, with matplotlib installed,
    ``curves.png``. With ``resume`` an existing checkpoint is continued. ``threads`` sets
    ``torch.set_num_threads``; ``export_to`` also copies the final weights there.
    """
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    if threads is not None:
        torch.set_num_threads(threads)
    settings = PretrainSettings(steps, batch_size, lr, seed, warmup, weight_decay, 64, shape_loss,
                                checkpoint_every, log_every)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = _resolve_device(device)
    torch.manual_seed(seed)

    model = create_model(weights=None, device=dev)
    model.train()
    shape_head = torch.nn.Linear(model.visual.output_dim, len(SHAPES)).to(dev)
    tokenizer = get_tokenizer()
    groups = _param_groups(model, weight_decay) + [{"params": list(shape_head.parameters()), "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)

    start = 0
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=True)
        saved = ckpt["settings"]
        changed = [k for k in _SCHEDULE_KEYS if saved.get(k) != getattr(settings, k)]
        if changed:
            raise ValueError(
                f"{ckpt_path} was written with different settings ({', '.join(changed)}: "
                f"{[saved.get(k) for k in changed]}); use the same settings, another --out, or --no-resume")
        model.load_state_dict(ckpt["model"])
        shape_head.load_state_dict(ckpt["shape_head"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])

    # A run that starts at step 0 begins a fresh metrics file; a resumed one continues it.
    metrics_mode = "a" if start else "w"
    with open(out / LOG, "a", encoding="utf-8") as log, open(out / METRICS, metrics_mode, encoding="utf-8") as metrics:
        n_params = count_parameters(model)
        log.write(f"# start step={start} device={dev} threads={torch.get_num_threads()} params={n_params} "
                  f"settings={json.dumps(asdict(settings))}\n")
        log.flush()

        def checkpoint(step: int) -> None:
            _atomic_save({"model": model.state_dict(), "shape_head": shape_head.state_dict(),
                          "optimizer": optimizer.state_dict(), "step": step, "settings": asdict(settings)},
                         ckpt_path)

        use_amp = dev == "cuda"
        t0 = time.perf_counter()
        window_start, window_steps = t0, 0
        bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, desc="pretrain")
        for step in bar:
            lr_now = lr_at(step, settings)
            for group in optimizer.param_groups:
                group["lr"] = lr_now
            images, texts, shapes = pretrain_batch(step, batch_size, seed, settings.image_size)
            pixels = images_to_tensor(images, model, dev)
            tokens = tokenizer(texts).to(dev)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                img_embed = model.encode_image(pixels)
                img = F.normalize(img_embed, dim=-1)
                txt = encode_text_trimmed(model, tokens, normalize=True, buckets=4)
                logits = model.logit_scale.exp() * img.float() @ txt.float().T
                shape_logits = shape_head(img_embed).float()
            target = torch.arange(len(texts), device=dev)
            clip_loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
            present = torch.from_numpy(shapes).float().to(dev)
            aux_loss = F.cross_entropy(shape_logits, present / present.sum(dim=1, keepdim=True))
            loss = clip_loss + shape_loss * aux_loss
            if not torch.isfinite(loss):
                log.write(f"step {step}: non-finite loss; stopping (last checkpoint kept)\n")
                raise FloatingPointError(f"non-finite loss at step {step}; last good checkpoint: {ckpt_path}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # as in CLIP: temperature at most 100

            done = step + 1
            window_steps += 1
            if done % log_every == 0 or done == steps:
                now = time.perf_counter()
                sps = (now - window_start) / window_steps
                window_start, window_steps = now, 0
                acc = (logits.argmax(1) == target).float().mean().item()
                log.write(f"step {done} loss {loss.item():.4f} clip {clip_loss.item():.4f} "
                          f"shape {aux_loss.item():.4f} acc {acc:.3f} lr {lr_now:.2e} "
                          f"scale {model.logit_scale.exp().item():.1f} s/step {sps:.3f} "
                          f"eta_min {(steps - done) * sps / 60:.1f}\n")
                log.flush()
                # The run directory's record format, so mmadapt.plots draws the curves like a run's.
                metrics.write(json.dumps({"stage": "pretrain", "step": done, "loss": loss.item(),
                                          "clip_loss": clip_loss.item(), "shape_loss": aux_loss.item(),
                                          "batch_accuracy": acc, "lr/all": lr_now}) + "\n")
                metrics.flush()
                bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
            if done % checkpoint_every == 0 or done == steps:
                checkpoint(done)

    weights = out / WEIGHTS
    save_weights(model, weights)
    summary = {**asdict(settings), "params": n_params, "device": dev,
               "wall_time_s": round(time.perf_counter() - t0, 1), "resumed_from": start}
    (out / SETTINGS).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if export_to is not None:
        save_weights(model, Path(export_to))
    with open(out / LOG, "a", encoding="utf-8") as log:
        log.write(f"# done: {weights}\n")
    draw_training_curves(out)
    return weights
