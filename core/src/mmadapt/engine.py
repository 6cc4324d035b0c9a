"""The training and evaluation loop on HF Accelerate, with stages, checkpoints and exact resume.

Shuffling and augmentation are seeded from (seed, stage, epoch), so an epoch draws the same batches
whether the run is fresh or resumed, and every data-parallel rank agrees on the global batch: rank r
takes items r, r + world, ... of each global batch, and DDP's gradient mean equals the one-process
mean over the same global batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from .config import TrainConfig
from .data import Split, collate
from .errors import NonFiniteLossError, UserError
from .metrics import Metric
from .rundir import atomic_write_dir

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .adapter import Adapter
    from .data import DataBundle
    from .recipe import Recipe
    from .rundir import RunDir

_CHECKPOINT = re.compile(r"^(?P<stage>[\w.-]+)-epoch(?P<epoch>\d+)$")


@dataclass
class Run:
    """One seed of a recipe: what protocols drive and lifecycle hooks observe."""

    recipe: Recipe
    run_dir: RunDir
    accelerator: Accelerator
    hook: Any
    bundle: DataBundle
    adapter: Adapter
    objective: Any
    seed: int
    transforms: tuple[Any, Any]
    steps: int = 0
    skipped_images: int = 0

    def __post_init__(self) -> None:
        # Names of the unreadable items met so far; drops of items without a name, merged over the
        # processes, and new in this process since the last merge.
        self._skipped_keys: set[str] = set()
        self._skipped_unnamed = 0
        self._skipped_unnamed_new = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.accelerator.is_main_process

    @property
    def task(self):
        """The task the adapter currently serves."""
        return self.adapter.task

    # -- training -------------------------------------------------------------------------------
    def fit(
        self,
        split: str = "train",
        stage: str = "train",
        epochs: int | None = None,
        groups: list[str] | None = None,
    ) -> None:
        """Train the adapter on ``split`` for ``epochs`` (default ``train.epochs``).

        ``stage`` names the checkpoints, so multi-stage protocols resume at the right stage; a stage
        whose final checkpoint exists is loaded and skipped. ``groups`` limits training to some of the
        adapter's parameter groups (alternating stages).
        """
        train = self.recipe.train
        epochs = epochs or train.epochs
        dataset = self._training_split(split)
        if len(dataset) == 0:
            raise UserError(f"split {split!r} is empty; nothing to train on")
        optimizer = build_optimizer(self.adapter, train, groups)
        steps_per_epoch = math.ceil(len(batches_of(len(dataset), train.batch_size)) / train.grad_accum)
        scheduler = build_scheduler(optimizer, train, epochs, steps_per_epoch)
        start_epoch = self._restore(stage, epochs, optimizer, scheduler)
        if start_epoch > epochs:
            return
        model, optimizer = self.accelerator.prepare(self.adapter, optimizer)
        progress = tqdm(
            total=(epochs - start_epoch + 1) * steps_per_epoch,
            desc=f"{self.recipe.name} [{stage}]",
            disable=not self.is_main,
            leave=False,
        )
        try:
            for epoch in range(start_epoch, epochs + 1):
                self._train_epoch(model, optimizer, scheduler, dataset, stage, epoch, progress)
                if train.schedule_unit == "epoch":
                    scheduler.step()
                if epoch % train.checkpoint_every == 0 or epoch == epochs:
                    self._save(stage, epoch, optimizer, scheduler)
        finally:
            progress.close()
            self.adapter = self.accelerator.unwrap_model(model)
            self.accelerator.free_memory()

    def _train_epoch(self, model, optimizer, scheduler, dataset, stage: str, epoch: int, progress) -> None:
        train = self.recipe.train
        seed_everything(self.seed, stage, epoch)
        loader = self._loader(dataset, train.batch_size, shuffle=True, epoch_seed=(self.seed, stage, epoch))
        model.train()
        micro = 0
        for batch in loader:
            self._note_skipped(batch)
            if "label" not in batch:  # every image of the batch was unreadable and skipped
                continue
            batch = to_device(batch, self.accelerator.device)
            with self.accelerator.autocast():
                outputs = model(batch)
                loss, terms = self.objective(outputs, batch)
            if not torch.isfinite(loss.detach()).all():
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at stage {stage!r}, epoch {epoch}, step {self.steps}; "
                    f"the last good checkpoint is kept in {self.run_dir.checkpoints}. Lower train.lr or use "
                    f"train.precision=fp32."
                )
            self.accelerator.backward(loss / train.grad_accum)
            micro += 1
            if micro % train.grad_accum and micro < len(loader):
                continue
            if train.clip_grad_norm:
                self.accelerator.clip_grad_norm_(model.parameters(), train.clip_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if train.schedule_unit == "step":
                scheduler.step()
            self.steps += 1
            progress.update(1)
            if self.steps % train.log_every == 0:
                self._log_step(stage, epoch, loss, terms, optimizer)

    def _log_step(self, stage: str, epoch: int, loss, terms: dict, optimizer) -> None:
        logs = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        for group in optimizer.param_groups:
            logs[f"lr/{group['name']}"] = group["lr"]
        if self.is_main:
            self.run_dir.log({"stage": stage, "epoch": epoch, "step": self.steps, **logs})
            self.hook.on_step_end(run=self, step=self.steps, logs=logs)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, split: str = "test", prefix: str | None = None) -> dict[str, float]:
        """Evaluate the adapter on ``split`` with the recipe's metrics; keys are ``<prefix>/<metric>``."""
        prefix = prefix or split
        dataset = self._features_or_images(split, augment=False)
        metrics = [section.build() for section in self.recipe.metrics]
        inputs = [getattr(metric, "inputs", Metric.inputs) for metric in metrics]
        output_keys = sorted({k for wanted in inputs for k in wanted.get("outputs", ())})
        batch_keys = sorted({k for wanted in inputs for k in wanted.get("batch", ())})
        self.adapter.eval()

        def per_sample(batch: dict) -> dict[str, torch.Tensor]:
            batch = to_device(batch, self.accelerator.device)
            with self.accelerator.autocast():
                outputs = self.adapter(batch)
            size = len(batch["index"])
            return {"index": batch["index"],
                    **{f"outputs.{k}": _per_sample(outputs, k, "adapter outputs", size) for k in output_keys},
                    **{f"batch.{k}": _per_sample(batch, k, "batch", size) for k in batch_keys}}

        def feed(chunk: dict[str, torch.Tensor]) -> None:
            outputs = {k[len("outputs."):]: v for k, v in chunk.items() if k.startswith("outputs.")}
            batch = {k[len("batch."):]: v for k, v in chunk.items() if k.startswith("batch.")}
            for metric in metrics:
                metric.update(outputs, batch)

        # One process feeds the metrics batch by batch; several gather the whole split first.
        stream = feed if self.accelerator.num_processes == 1 else None
        gathered = self._sharded_pass(dataset, per_sample, f"eval {prefix}", stream=stream)
        size = self.recipe.eval.batch_size
        for start in range(0, len(gathered.get("index", ())), size):
            feed({k: v[start : start + size] for k, v in gathered.items()})
        results = {f"{prefix}/{k}": float(v) for metric in metrics for k, v in metric.compute().items()}
        if self.is_main:
            self.run_dir.log({"eval": prefix, "step": self.steps, **results})
            self.hook.on_eval_end(run=self, split=prefix, metrics=results)
        return results

    # -- data -----------------------------------------------------------------------------------
    def _training_split(self, split: str) -> Split:
        return self._features_or_images(split, augment=self.recipe.data.config.augment != "none")

    def _features_or_images(self, split: str, augment: bool) -> Split:
        """The split with the train (augmenting) or test transform; cached features when exact."""
        train_transform, test_transform = self.transforms
        dataset = self.bundle.split(split).with_transform(train_transform if augment else test_transform)
        if self.adapter.frozen_image_features and not augment:
            return self._cached_features(split, dataset)
        return dataset

    def _cached_features(self, split: str, dataset: Split) -> Split:
        cache = self.__dict__.setdefault("_feature_cache", {})
        key = (split, id(self.bundle.splits.get(split)))
        if key not in cache:
            backbone = self.adapter.backbone

            def encode(batch: dict) -> dict[str, torch.Tensor]:
                with self.accelerator.autocast():
                    features = backbone.encode_image(batch["image"].to(self.accelerator.device)).float()
                return {"features": features.cpu(), "label": batch["label"], "index": batch["index"]}

            gathered = self._sharded_pass(dataset, encode, f"features {split}")
            if not gathered:
                raise UserError(f"split {split!r} has no readable image; check data.root and data.on_bad_image")
            cache[key] = FeatureSplit(gathered["features"], gathered["label"], gathered["index"])
        return cache[key]

    def _note_skipped(self, batch: dict) -> None:
        """Record the unreadable items a batch dropped: each once, however often it is met."""
        keys = batch.pop("skipped_keys", [])
        self._skipped_keys.update(keys)
        # Items of a dataset whose __getitem__ returns None cannot be told apart; each drop counts.
        self._skipped_unnamed_new += int(batch.pop("skipped", 0)) - len(keys)
        self._count_skipped()

    def _merge_skipped(self) -> None:
        """Unite every process's record of unreadable items (collective: every process calls it).

        Names are united (repeatable); unnamed drops since the last merge are summed once and cleared.
        """
        if self.accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            records = gather_object([(self._skipped_keys, self._skipped_unnamed_new)])
            self._skipped_keys = set().union(*(keys for keys, _ in records))
            self._skipped_unnamed += sum(new for _, new in records)
        else:
            self._skipped_unnamed += self._skipped_unnamed_new
        self._skipped_unnamed_new = 0
        self._count_skipped()

    def _count_skipped(self) -> None:
        self.skipped_images = len(self._skipped_keys) + self._skipped_unnamed + self._skipped_unnamed_new

    def _sharded_pass(self, dataset, per_batch, desc: str, stream=None) -> dict[str, torch.Tensor]:
        """``per_batch(batch)`` over this process's share of ``dataset``, gathered from every process.

        ``per_batch`` returns per-sample tensors including ``"index"``. The result holds them for every
        item (on the CPU) sorted by ``index``, so every process gets what a single process would. Empty
        when nothing was readable. With ``stream`` (one process only) each batch's result goes to
        ``stream`` at once and nothing is kept, so memory stays at one batch.
        """
        loader = self._loader(dataset, self.recipe.eval.batch_size, shuffle=False, shard=True)
        parts = []
        with torch.no_grad():
            for batch in tqdm(loader, desc=desc, disable=not self.is_main, leave=False):
                self._note_skipped(batch)
                if "label" not in batch:  # every image of the batch was unreadable and skipped
                    continue
                result = {k: v.detach().cpu() for k, v in per_batch(batch).items()}
                if stream is not None:
                    stream(result)
                else:
                    parts.append(result)
        local = {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}
        if self.accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            shards = [shard for shard in gather_object([local]) if shard]
            local = {k: torch.cat([shard[k] for shard in shards]) for k in shards[0]} if shards else {}
        self._merge_skipped()
        if not local:
            return {}
        order = torch.argsort(local["index"])
        return {k: v[order] for k, v in local.items()}

    def _loader(self, dataset, batch_size: int, shuffle: bool, epoch_seed=None, shard: bool = True) -> DataLoader:
        state = self.accelerator.state
        sampler = GlobalBatchSampler(
            len(dataset),
            batch_size,
            shuffle=shuffle,
            seed=stable_seed(*epoch_seed) if epoch_seed else 0,
            rank=state.process_index if shard else 0,
            world=state.num_processes if shard else 1,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.recipe.train.num_workers,
        )

    # -- checkpoints ----------------------------------------------------------------------------
    def _save(self, stage: str, epoch: int, optimizer, scheduler) -> None:
        self._merge_skipped()
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            return
        weights = {k: v.contiguous().cpu() for k, v in self.accelerator.unwrap_model(self.adapter).
                   trainable_state_dict().items()}
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "steps": self.steps,
            "skipped_images": self.skipped_images,
            "skipped_keys": sorted(self._skipped_keys),
            "skipped_unnamed": self._skipped_unnamed,  # merged just before, on every process
        }

        def write(folder):
            metadata = {"stage": stage, "epoch": str(epoch), "steps": str(self.steps)}
            save_file(weights, str(folder / "adapter.safetensors"), metadata=metadata)
            torch.save(state, folder / "state.pt")

        atomic_write_dir(self.run_dir.checkpoints / f"{stage}-epoch{epoch:04d}", write)
        self._prune(stage)

    def _prune(self, stage: str) -> None:
        keep = self.recipe.train.keep_checkpoints
        for old in checkpoints_of(self.run_dir, stage)[:-keep]:
            for file in old.iterdir():
                file.unlink()
            old.rmdir()

    def _restore(self, stage: str, epochs: int, optimizer, scheduler) -> int:
        """Load the newest checkpoint of ``stage``; return the first epoch still to train."""
        found = checkpoints_of(self.run_dir, stage)
        if not found:
            return 1
        latest = found[-1]
        epoch = int(_CHECKPOINT.match(latest.name)["epoch"])
        self.adapter.load_trainable_state_dict(load_file(str(latest / "adapter.safetensors")))
        state = torch.load(latest / "state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self.steps = int(state["steps"])
        self._skipped_keys = set(state.get("skipped_keys", []))
        self._skipped_unnamed = int(state.get("skipped_unnamed", state["skipped_images"]))
        self._skipped_unnamed_new = 0
        self._count_skipped()
        if self.is_main:
            self.run_dir.log({"resumed": stage, "epoch": epoch, "step": self.steps})
        return epoch + 1


def checkpoints_of(run_dir: RunDir, stage: str) -> list:
    """Checkpoint folders of one stage, oldest first."""
    if not run_dir.checkpoints.is_dir():
        return []
    found = []
    for path in run_dir.checkpoints.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match and match["stage"] == stage:
            found.append((int(match["epoch"]), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: RunDir) -> Any:
    """The checkpoint folder written last (most optimiser steps) of any stage, or None."""
    from safetensors import safe_open

    if not run_dir.checkpoints.is_dir():
        return None

    def steps(folder) -> int:
        with safe_open(str(folder / "adapter.safetensors"), framework="pt") as weights:
            return int((weights.metadata() or {}).get("steps", -1))

    candidates = [p for p in run_dir.checkpoints.iterdir() if _CHECKPOINT.match(p.name)]
    return max(candidates, key=steps, default=None)


# -- pieces ---------------------------------------------------------------------------------------
def _per_sample(mapping: dict, key: str, where: str, size: int) -> torch.Tensor:
    """``mapping[key]`` if it holds one value per item of the batch; a clear error otherwise."""
    value = mapping.get(key)
    if not isinstance(value, torch.Tensor):
        raise UserError(f"a metric of this recipe reads {key!r} from the {where}, which has no such tensor "
                        f"(keys: {', '.join(sorted(mapping))}); check eval.metrics against the adapter")
    if value.dim() == 0 or value.shape[0] != size:
        raise UserError(f"a metric of this recipe reads {key!r} from the {where} as one value per item, but "
                        f"its shape is {tuple(value.shape)} for a batch of {size}; a metric's `inputs` may "
                        "name only per-sample tensors")
    return value.detach()


class FeatureSplit(torch.utils.data.Dataset):
    """Precomputed frozen image features with their labels, standing in for an image split."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self.features, self.labels, self.indices = features, labels, indices

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image_features": self.features[i], "label": self.labels[i], "index": self.indices[i]}


class GlobalBatchSampler(Sampler[list[int]]):
    """Seeded global batches, each split across data-parallel ranks.

    Dassl drops the last incomplete batch only when the split holds at least one full batch.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        else:
            order = list(range(self.n))
        for batch in batches_of(self.n, self.batch_size, drop_last=self.shuffle):
            items = [order[i] for i in batch][self.rank :: self.world]
            if items:
                yield items

    def __len__(self) -> int:
        return len(batches_of(self.n, self.batch_size, drop_last=self.shuffle))


def batches_of(n: int, batch_size: int, drop_last: bool = True) -> list[range]:
    """Index ranges of consecutive batches; the tail is dropped only if a full batch exists."""
    ranges = [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if drop_last and len(ranges) > 1 and len(ranges[-1]) < batch_size:
        ranges.pop()
    return ranges


def stable_seed(*parts: Any) -> int:
    """A seed derived from several parts that is the same in every process and Python session."""
    import zlib

    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def seed_everything(*parts: Any) -> None:
    """Seed Python, NumPy and torch from ``parts`` (the run seed, a stage, an epoch)."""
    import random

    import numpy as np

    seed = stable_seed(*parts)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor of a batch to ``device``."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def build_optimizer(adapter: Adapter, train: TrainConfig, only: list[str] | None = None):
    """The optimizer over the adapter's named parameter groups, with per-group overrides."""
    groups = adapter.parameter_groups()
    unknown = sorted((set(train.param_groups) | set(only or [])) - set(groups))
    if unknown:
        raise UserError(
            f"train.param_groups names {unknown}, but adapter {type(adapter).__name__} has groups {sorted(groups)}"
        )
    param_groups = []
    for name, params in groups.items():
        if only is not None and name not in only:
            continue
        overrides = dict(train.param_groups.get(name, {}))
        params = [p for p in params if p.requires_grad]
        if params:
            param_groups.append({"name": name, "params": params, "lr": train.lr,
                                 "weight_decay": train.weight_decay, **overrides})
    if not param_groups:
        raise UserError(f"adapter {type(adapter).__name__} has no trainable parameters; use protocol: zeroshot")
    if train.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=train.lr, momentum=train.momentum)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=train.lr)
    return torch.optim.Adam(param_groups, lr=train.lr)


def build_scheduler(optimizer, train: TrainConfig, epochs: int, steps_per_epoch: int):
    """Dassl's schedule: constant ``warmup_lr`` for the warm-up, then cosine that never reaches zero.

    With ``schedule_unit: epoch`` (Dassl) the rate for epoch e (0-based) is ``warmup_lr`` while
    e < W and ``lr/2 * (1 + cos(pi * (e - W) / T))`` after, T = epochs; per-step schedules use steps.
    """
    per_step = train.schedule_unit == "step"
    total = epochs * steps_per_epoch if per_step else epochs
    warmup = train.warmup_epochs * (steps_per_epoch if per_step else 1)

    def factor(base_lr: float):
        def at(t: int) -> float:
            if t < warmup:
                return train.warmup_lr / base_lr
            if train.schedule == "constant":
                return 1.0
            return 0.5 * (1 + math.cos(math.pi * (t - warmup) / total))

        return at

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(g["lr"]) for g in optimizer.param_groups])
