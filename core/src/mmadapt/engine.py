"""The run that protocols drive: ``fit`` a stage, ``evaluate`` a split, a frozen ``features`` pass, ``state``.

A :class:`Run` is one seed of a recipe on HF Accelerate. Protocols talk to it only through
:meth:`Run.fit`, :meth:`Run.evaluate`, :meth:`Run.features` and :attr:`Run.state` and never assign
to its fields. Seeded batches live in :mod:`mmadapt.sampling`, the optimiser and schedule in
:mod:`mmadapt.optim`, checkpoint folders in :mod:`mmadapt.checkpoints`.
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .adapter import encode_batch_images
from .checkpoints import (
    Checkpoint,
    CorruptCheckpointError,
    RunState,
    check_stage_name,
    prune_checkpoints,
    read_checkpoints,
    write_checkpoint,
)
from .data import Split, collate
from .errors import NonFiniteLossError, UserError
from .metrics import Metric
from .optim import build_optimizer, build_scheduler
from .sampling import GlobalBatchSampler, batches_of, seed_everything, stable_seed

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .adapter import Adapter
    from .data import DataBundle, Task
    from .recipe import Recipe
    from .rundir import RunDir

#: What a batch or an adapter output holds per item: a tensor with one row per item, or a list with
#: one entry per item (images of different sizes).
PerSample = torch.Tensor | list


@dataclass
class Run:
    """One seed of a recipe: what protocols drive and lifecycle hooks observe.

    Protocols read its fields (``recipe``, ``bundle``, ``adapter``, ``objective``, ``seed``,
    ``steps``) and change the run only through its methods.
    """

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
    #: The protocol's own state (tensors and JSON values), saved with every checkpoint.
    state: RunState = field(default_factory=RunState)

    def __post_init__(self) -> None:
        # Names of the unreadable items met so far; drops of items without a name, merged over the
        # processes, and new in this process since the last merge.
        self._skipped_keys: set[str] = set()
        self._skipped_unnamed = 0
        self._skipped_unnamed_new = 0
        # Frozen image features per split object; weak keys, so a split that is gone takes its entry along.
        self._feature_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._restore_state()

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.accelerator.is_main_process

    @property
    def task(self) -> Task:
        """The task the adapter currently serves."""
        return self.adapter.task

    # -- training -------------------------------------------------------------------------------
    def fit(
        self,
        split: str | Split = "train",
        *,
        stage: str = "train",
        epochs: int | None = None,
        iterations: int | None = None,
        groups: list[str] | None = None,
        objective: Callable | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Train one stage of the adapter on ``split`` (a split name of the run's data, or a ``Split``).

        The stage lasts ``epochs`` (default ``train.epochs``) or ``iterations`` optimiser steps (the
        last epoch is then cut short). Only the parameter groups in ``groups`` train (default: all);
        every other parameter gets no gradient during the stage and is not clipped. ``objective``
        (``(outputs, batch) -> (loss, terms)``) replaces the recipe's for this stage, ``batch_size``
        replaces ``train.batch_size``. Each stage has its own optimiser and schedule. ``stage`` names
        the checkpoints (letters, digits, ``_.-``): a stage whose final checkpoint exists is loaded and
        skipped, a started one resumes from its newest checkpoint.
        """
        check_stage_name(stage)
        for key, value in (("epochs", epochs), ("iterations", iterations), ("batch_size", batch_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"run.fit(stage={stage!r}): {key} must be a positive integer; got {value!r}")
        if epochs is not None and iterations is not None:
            raise UserError(f"run.fit(stage={stage!r}): give the stage's length as epochs or iterations, not both")
        train = self.recipe.train
        batch_size = batch_size or train.batch_size
        dataset = self._training_split(split)
        if len(dataset) == 0:
            raise UserError(f"split {_split_name(split)!r} is empty; nothing to train on")
        steps_per_epoch = math.ceil(len(batches_of(len(dataset), batch_size)) / train.grad_accum)
        epochs = math.ceil(iterations / steps_per_epoch) if iterations else epochs or train.epochs
        stage_steps = iterations or epochs * steps_per_epoch
        # Checkpoints hold every trainable tensor, also those a stage leaves frozen.
        checkpoint_keys = list(self.adapter.trainable_state_dict())
        optimizer = build_optimizer(self.adapter, train, groups)
        scheduler = build_scheduler(optimizer, train, epochs, steps_per_epoch, iterations)
        start_epoch = self._restore(stage, optimizer, scheduler)
        if start_epoch > epochs:
            return
        trained = [p for group in optimizer.param_groups for p in group["params"]]
        progress = tqdm(
            total=stage_steps - (start_epoch - 1) * steps_per_epoch,
            desc=f"{self.recipe.name} [{stage}]",
            disable=not self.is_main,
            leave=False,
        )
        with _training_only(self.adapter, trained):
            model, optimizer = self.accelerator.prepare(self.adapter, optimizer)
            try:
                for epoch in range(start_epoch, epochs + 1):
                    budget = min(steps_per_epoch, stage_steps - (epoch - 1) * steps_per_epoch)
                    self._train_epoch(model, optimizer, scheduler, trained, objective or self.objective,
                                      dataset, batch_size, stage, epoch, budget, progress)
                    if train.schedule_unit == "epoch":
                        scheduler.step()
                    if epoch % train.checkpoint_every == 0 or epoch == epochs:
                        self._save(stage, epoch, optimizer, scheduler, checkpoint_keys)
            finally:
                progress.close()
                self.adapter = self.accelerator.unwrap_model(model)
                self.accelerator.free_memory()

    def _train_epoch(self, model, optimizer, scheduler, trained, objective, dataset, batch_size: int, stage: str,
                     epoch: int, budget: int, progress) -> None:
        """One epoch of at most ``budget`` optimiser steps."""
        train = self.recipe.train
        seed_everything(self.seed, stage, epoch)
        loader = self._loader(dataset, batch_size, shuffle=True, epoch_seed=(self.seed, stage, epoch))
        model.train()
        micro = taken = 0
        for batch in loader:
            self._note_skipped(batch)
            if "index" not in batch:  # every image of the batch was unreadable and skipped
                continue
            batch = to_device(batch, self.accelerator.device)
            with self.accelerator.autocast():
                outputs = model(batch)
                loss, terms = objective(outputs, batch)
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
                self.accelerator.clip_grad_norm_(trained, train.clip_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if train.schedule_unit == "step":
                scheduler.step()
            self.steps += 1
            taken += 1
            progress.update(1)
            if self.steps % train.log_every == 0:
                self._log_step(stage, epoch, loss, terms, optimizer)
            if taken == budget:
                break

    def _log_step(self, stage: str, epoch: int, loss, terms: dict, optimizer) -> None:
        logs = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        for group in optimizer.param_groups:
            logs[f"lr/{group['name']}"] = group["lr"]
        if self.is_main:
            self.run_dir.log({"stage": stage, "epoch": epoch, "step": self.steps, **logs})
            self.hook.on_step_end(run=self, step=self.steps, logs=logs)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(
        self,
        split: str | Split = "test",
        *,
        task: Task | None = None,
        metrics: list[Metric] | None = None,
        prefix: str | None = None,
    ) -> dict[str, float]:
        """Evaluate the adapter on ``split``; keys are ``<prefix>/<metric>`` (prefix: the split's name).

        ``task`` switches the adapter to another class list for this evaluation and back after it
        (base-to-novel's new classes). ``metrics`` (metric objects, reset before use) replace the
        recipe's ``eval.metrics``, e.g. mAP over the classes seen so far. Collective: in a data-parallel
        run every process calls it; each evaluates its share and all get the same numbers.
        """
        prefix = prefix or _split_name(split)
        with self._serving(task):
            dataset = self._features_or_images(split, augment=False)
            metrics = self._fresh_metrics(metrics)
            inputs = [getattr(metric, "inputs", Metric.inputs) for metric in metrics]
            output_keys = sorted({k for wanted in inputs for k in wanted.get("outputs", ())})
            batch_keys = sorted({k for wanted in inputs for k in wanted.get("batch", ())})
            self.adapter.eval()

            def per_sample(batch: dict) -> dict[str, PerSample]:
                batch = to_device(batch, self.accelerator.device)
                with self.accelerator.autocast():
                    outputs = self.adapter(batch)
                size = len(batch["index"])
                return {"index": batch["index"],
                        **{f"outputs.{k}": _per_sample(outputs, k, "adapter outputs", size) for k in output_keys},
                        **{f"batch.{k}": _per_sample(batch, k, "batch", size) for k in batch_keys}}

            def feed(chunk: dict[str, PerSample]) -> None:
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

    def _fresh_metrics(self, metrics: list[Metric] | None) -> list[Metric]:
        if metrics is None:
            return [section.build() for section in self.recipe.metrics]
        for metric in metrics:
            if not all(callable(getattr(metric, name, None)) for name in ("reset", "update", "compute")):
                raise TypeError(f"run.evaluate(metrics=...) takes metric objects (reset/update/compute); "
                                f"got {type(metric).__name__}")
            metric.reset()
        return list(metrics)

    @contextmanager
    def _serving(self, task: Task | None) -> Iterator[None]:
        """The adapter serves ``task`` inside the block and its previous task after it."""
        previous = self.adapter.task
        if task is None or task is previous:
            yield
            return
        self.adapter.set_task(task)
        try:
            yield
        finally:
            self.adapter.set_task(previous)

    def features(self, split: str | Split, fn: Callable[[dict], dict[str, PerSample]], *,
                 desc: str | None = None) -> dict[str, PerSample]:
        """A frozen pass: ``fn(batch)`` over every item of ``split`` with the test transform, without gradients.

        ``fn`` gets each batch on the run's device under its precision and returns per-sample values
        (a tensor with one row per item, or a list). The result holds them for every item, in item
        order, with ``"index"``; in a data-parallel run each process computes its share and all get
        the whole result. Empty when nothing was readable. Collective, like :meth:`evaluate`.
        """
        dataset = self._split(split).with_transform(self.transforms[1])

        def on_device(batch: dict) -> dict[str, PerSample]:
            with self.accelerator.autocast():
                values = fn(to_device(batch, self.accelerator.device))
            return {"index": batch["index"], **values}

        return self._sharded_pass(dataset, on_device, desc or f"features {_split_name(split)}")

    # -- data -----------------------------------------------------------------------------------
    def _split(self, split: str | Split) -> Split:
        return self.bundle.split(split) if isinstance(split, str) else split

    def _training_split(self, split: str | Split) -> Split:
        return self._features_or_images(split, augment=self.recipe.data.config.augment != "none")

    def _features_or_images(self, split: str | Split, augment: bool) -> Split:
        """The split with the train (augmenting) or test transform; cached features when exact."""
        source = self._split(split)
        train_transform, test_transform = self.transforms
        dataset = source.with_transform(train_transform if augment else test_transform)
        if self.adapter.frozen_image_features and not augment:
            if source not in self._feature_cache:
                self._feature_cache[source] = self._encode_images(dataset, _split_name(split))
            return self._feature_cache[source]
        return dataset

    def _encode_images(self, dataset: Split, name: str) -> FeatureSplit:
        backbone, kind = self.adapter.backbone, self.adapter.task.kind

        def encode(batch: dict) -> dict[str, torch.Tensor]:
            images = to_device({"image": batch["image"]}, self.accelerator.device)["image"]
            with self.accelerator.autocast():
                features = encode_batch_images(backbone, images, kind).float()
            return {"features": features.cpu(), "index": batch["index"],
                    **({"label": batch["label"]} if "label" in batch else {})}

        gathered = self._sharded_pass(dataset, encode, f"features {name}")
        if not gathered:
            raise UserError(f"split {name!r} has no readable image; check data.root and data.on_bad_image")
        return FeatureSplit(gathered["features"], gathered.get("label"), gathered["index"])

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

    def _sharded_pass(self, dataset, per_batch, desc: str, stream=None) -> dict[str, PerSample]:
        """``per_batch(batch)`` over this process's share of ``dataset``, gathered from every process.

        ``per_batch`` returns per-sample values including ``"index"``. The result holds them for every
        item (on the CPU) sorted by ``index``, so every process gets what a single process would. Empty
        when nothing was readable. With ``stream`` (one process only) each batch's result goes to
        ``stream`` at once and nothing is kept, so memory stays at one batch.
        """
        loader = self._loader(dataset, self.recipe.eval.batch_size, shuffle=False, shard=True)
        parts = []
        with torch.no_grad():
            for batch in tqdm(loader, desc=desc, disable=not self.is_main, leave=False):
                self._note_skipped(batch)
                if "index" not in batch:  # every image of the batch was unreadable and skipped
                    continue
                result = {k: _to_cpu(v) for k, v in per_batch(batch).items()}
                if stream is not None:
                    stream(result)
                else:
                    parts.append(result)
        local = _concatenate(parts)
        if self.accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            local = _concatenate([shard for shard in gather_object([local]) if shard])
        self._merge_skipped()
        if not local:
            return {}
        order = torch.argsort(local["index"])
        return {k: v[order] if isinstance(v, torch.Tensor) else [v[i] for i in order.tolist()]
                for k, v in local.items()}

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
    def load_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Load a checkpoint's adapter weights and protocol state (``adapt eval``, a finished run)."""
        self._load_weights(checkpoint, checkpoint.weights())
        checkpoint.load_state_into(self.state)

    def _load_weights(self, checkpoint: Checkpoint, weights: dict[str, torch.Tensor]) -> None:
        try:
            self.adapter.load_trainable_state_dict(weights)
        except (ValueError, RuntimeError) as exc:
            raise UserError(
                f"{checkpoint.folder}: the checkpoint does not fit adapter {type(self.adapter).__name__} "
                f"({str(exc).splitlines()[0][:300]}); the recipe's adapter section changed since it was written"
            ) from None

    def _save(self, stage: str, epoch: int, optimizer, scheduler, keys: list[str]) -> None:
        self._merge_skipped()
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            return
        tensors = self.accelerator.unwrap_model(self.adapter).state_dict()
        training_state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "steps": self.steps,
            "skipped_images": self.skipped_images,
            "skipped_keys": sorted(self._skipped_keys),
            "skipped_unnamed": self._skipped_unnamed,  # merged just before, on every process
        }
        write_checkpoint(
            self.run_dir.checkpoints / f"{stage}-epoch{epoch:04d}",
            stage=stage, epoch=epoch, steps=self.steps,
            weights={k: tensors[k].detach().contiguous().cpu() for k in keys},
            training_state=training_state, state=self.state,
        )
        prune_checkpoints(self.run_dir.path, stage, self.recipe.train.keep_checkpoints)

    def _restore(self, stage: str, optimizer, scheduler) -> int:
        """Load the newest readable checkpoint of ``stage``; return the first epoch still to train.

        An unreadable checkpoint is reported and the one before it is used; when none can be read,
        the error names the newest folder to delete.
        """
        found = read_checkpoints(self.run_dir.path, stage)
        first_error = None
        for checkpoint in reversed(found):
            try:
                weights, state = checkpoint.weights(), checkpoint.training_state()
            except CorruptCheckpointError as error:
                print(f"warning: {error}; resuming from the checkpoint before it", file=sys.stderr)
                first_error = first_error or error
                continue
            self._load_weights(checkpoint, weights)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            self.steps = int(state["steps"])
            self._skipped_keys = set(state.get("skipped_keys", []))
            self._skipped_unnamed = int(state.get("skipped_unnamed", state["skipped_images"]))
            self._skipped_unnamed_new = 0
            self._count_skipped()
            if self.is_main:
                self.run_dir.log({"resumed": stage, "epoch": checkpoint.epoch, "step": self.steps})
            return checkpoint.epoch + 1
        if first_error is not None:
            print(f"warning: no readable checkpoint of stage {stage!r} is left; it trains from the start",
                  file=sys.stderr)
        return 1

    def _restore_state(self) -> None:
        """On resume, the protocol state of the newest readable checkpoint of any stage."""
        for checkpoint in reversed(read_checkpoints(self.run_dir.path)):
            try:
                checkpoint.load_state_into(self.state)
                return
            except CorruptCheckpointError as error:
                print(f"warning: {error}", file=sys.stderr)


# -- pieces ---------------------------------------------------------------------------------------
@contextmanager
def _training_only(adapter: Adapter, trained: list[torch.nn.Parameter]) -> Iterator[None]:
    """Inside the block only ``trained`` parameters require gradients; no ``.grad`` survives either end."""
    keep = {id(p) for p in trained}
    frozen = [p for p in adapter.parameters() if p.requires_grad and id(p) not in keep]
    for p in adapter.parameters():
        p.grad = None
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
        for p in adapter.parameters():
            p.grad = None


def _split_name(split: str | Split) -> str:
    return split if isinstance(split, str) else getattr(split, "name", None) or type(split).__name__


def _per_sample(mapping: dict, key: str, where: str, size: int) -> PerSample:
    """``mapping[key]`` if it holds one value per item of the batch; a clear error otherwise."""
    value = mapping.get(key)
    if isinstance(value, list) and len(value) == size:
        return [v.detach() if isinstance(v, torch.Tensor) else v for v in value]
    if not isinstance(value, torch.Tensor):
        raise UserError(f"a metric of this recipe reads {key!r} from the {where}, which has no such tensor "
                        f"(keys: {', '.join(sorted(mapping))}); check eval.metrics against the adapter")
    if value.dim() == 0 or value.shape[0] != size:
        raise UserError(f"a metric of this recipe reads {key!r} from the {where} as one value per item, but "
                        f"its shape is {tuple(value.shape)} for a batch of {size}; a metric's `inputs` may "
                        "name only per-sample values")
    return value.detach()


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def _concatenate(parts: list[dict[str, PerSample]]) -> dict[str, PerSample]:
    """Per-sample values of several batches (or processes) one after another: tensors joined, lists chained."""
    if not parts:
        return {}
    return {k: torch.cat([p[k] for p in parts]) if isinstance(parts[0][k], torch.Tensor)
            else [v for p in parts for v in p[k]] for k in parts[0]}


class FeatureSplit(torch.utils.data.Dataset):
    """Precomputed frozen image features with their labels (if any), standing in for an image split."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor | None, indices: torch.Tensor) -> None:
        self.features, self.labels, self.indices = features, labels, indices

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"image_features": self.features[i], "index": self.indices[i]}
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor of a batch (also those in lists: images of different sizes) to ``device``."""
    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return {k: move(v) for k, v in batch.items()}
