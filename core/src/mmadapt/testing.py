"""Pytest fixtures and helpers for plugin authors (loaded through the ``pytest11`` entry point).

Installing mmadapt makes these fixtures available to every test suite, with no conftest.py:

- ``plugin_manager``: a freshly loaded plugin manager (builtins and installed plugins), used by all
  ``adapt`` code for the duration of one test.
- ``register_plugin``: ``register_plugin(obj, name)`` adds a plugin object for one test.
- ``tiny_plugin``: registers the tiny offline components ``tiny-clip`` (backbone) and
  ``tiny-colours`` (dataset) for one test.
- ``tiny_backbone``, ``tiny_task``, ``tiny_batch``: a tiny random-weight CLIP, the tiny colour task
  and one preprocessed batch of it, for unit tests of an adapter.

Helpers: ``tiny_recipe(**sections)``, ``tiny_recipe_from(path, **sections)``,
``run_recipe(recipe, output_dir) -> summary``, ``tiny_bundle``, ``make_batch``, ``train_steps``,
``parameter_snapshot``, ``assert_only_trainable_changed``, ``assert_adapter_contract``,
``assert_shared_prefix_exact``, ``assert_import_is_cheap``, and the multi-process matrix's ``ProcessCase`` and
``assert_same_across_processes``, ``adapt_subprocess`` (``adapt`` in a fresh process, killed mid-stage for
resume tests), and ``assert_export_reproduces_run`` (``adapt export`` then ``load_adapter`` gives the run's
outputs). docs/testing-plugins.md shows each with an example.

Importing this module stays cheap (pytest loads it at start-up): torch loads inside the helpers.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import DataConfig
from .hookspecs import hookimpl
from .plugins import PluginManager, get_plugin_manager, reset_plugin_manager
from .testing_export import assert_export_reproduces_run as assert_export_reproduces_run
from .testing_killed import adapt_subprocess as adapt_subprocess
from .testing_processes import ProcessCase as ProcessCase
from .testing_processes import assert_same_across_processes as assert_same_across_processes

if TYPE_CHECKING:
    import torch

    from .adapter import Adapter
    from .backbone import Backbone
    from .data import DataBundle, Split, Task

#: A loss for :func:`train_steps`: ``loss_fn(outputs, batch) -> scalar tensor``.
LossFn = Callable[[dict[str, Any], dict[str, Any]], "torch.Tensor"]


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    """A freshly loaded plugin manager, used by ``adapt`` code for the duration of one test."""
    previous = get_plugin_manager()
    manager = PluginManager().load()
    reset_plugin_manager(manager)
    yield manager
    reset_plugin_manager(previous)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run the test on one intra-op torch thread: tiny models gain nothing from more, and on a shared
    machine a second thread waiting for a busy core makes every small op take a scheduler slice."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Callable[[Any, str], Any]:
    """``register_plugin(obj, name)`` adds a plugin object (module or instance) for this test only."""

    def register(plugin: Any, name: str = "test-plugin") -> Any:
        info = plugin_manager.add_plugin(name, lambda: plugin, distribution=None, version=None)
        if info.error:
            raise RuntimeError(f"plugin {name!r} failed to register: {info.error}\n{info.traceback}")
        return info

    return register


# -- tiny components ------------------------------------------------------------------------------

TINY_COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple")
_RGB = {
    "red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
    "magenta": (220, 30, 220), "cyan": (30, 220, 220), "orange": (240, 140, 20), "purple": (120, 40, 170),
}


@dataclass
class TinyClipConfig:
    """A randomly initialised tiny open_clip CLIP (32 x 32 images, width 64)."""

    arch: str = "vit"
    seed: int = 0


@dataclass
class TinyColoursConfig(DataConfig):
    """Noisy images whose dominant colour is the class: separable, so learning shows quickly."""

    n_classes: int = 4
    train_per_class: int = 16
    test_per_class: int = 8
    image_size: int = 32
    seed: int = 0


def tiny_colours_bundle(config: TinyColoursConfig) -> Any:
    """The ``tiny-colours`` dataset: train and test splits of generated colour images."""
    from .data import DataBundle, Task

    if not 2 <= config.n_classes <= len(TINY_COLOURS):
        raise ValueError(f"data.n_classes must be between 2 and {len(TINY_COLOURS)}; got {config.n_classes}")
    classnames = list(TINY_COLOURS[: config.n_classes])
    splits = {
        name: _colour_split(config, split_seed, per_class)
        for name, split_seed, per_class in (("train", 1, config.train_per_class), ("test", 2, config.test_per_class))
    }
    return DataBundle(Task(classnames, templates=["a photo of a {} thing."], name="tiny-colours"), splits)


def _colour_split(config: TinyColoursConfig, split_seed: int, per_class: int) -> Any:
    import numpy as np
    from PIL import Image

    from .data import Split

    class ColourSplit(Split):
        def _load(self, i: int) -> dict[str, Any]:
            rng = np.random.default_rng([config.seed, split_seed, i])
            colour = np.array(_RGB[TINY_COLOURS[self.labels[i]]], dtype=np.float32)
            noise = rng.normal(0, 40, size=(config.image_size, config.image_size, 3))
            pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
            return {"image": Image.fromarray(pixels)}

    labels = [c for _ in range(per_class) for c in range(config.n_classes)]
    return ColourSplit(labels, config.n_classes, on_bad_image=config.on_bad_image)


class TinyComponents:
    """A plugin with the ``tiny-clip`` backbone and the ``tiny-colours`` dataset, for fast tests."""

    @hookimpl
    def register_backbones(self, register: Callable[..., None]) -> None:
        """Register ``tiny-clip``."""
        register("tiny-clip", "mmadapt.testing_models:tiny_clip_from_config", TinyClipConfig,
                 "tiny random-weight open_clip CLIP for tests")

    @hookimpl
    def register_datasets(self, register: Callable[..., None]) -> None:
        """Register ``tiny-colours``."""
        register("tiny-colours", "mmadapt.testing:tiny_colours_bundle", TinyColoursConfig,
                 "generated colour images for tests")


#: Entry-point target (``mmadapt.testing:tiny_components``) for subprocess tests.
tiny_components = TinyComponents()


@pytest.fixture
def tiny_plugin(register_plugin: Callable[..., Any]) -> Any:
    """Registers ``tiny-clip`` and ``tiny-colours`` for this test."""
    return register_plugin(TinyComponents(), "mmadapt-testing-tiny")


def tiny_recipe(**sections: Any) -> dict[str, Any]:
    """A runnable recipe mapping on the tiny components; ``sections`` replace or extend its sections.

    A mapping extends the section of the same name (``train={"epochs": 5}`` keeps the other train
    keys); any other value replaces it.
    """
    recipe: dict[str, Any] = {
        "name": "tiny",
        "seed": 1,
        "backbone": {"name": "tiny-clip"},
        "data": {"name": "tiny-colours"},
        "adapter": {"name": "zeroshot"},
        "protocol": {"name": "eval-only"},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.01, "precision": "fp32", "log_every": 1},
    }
    return _extend(recipe, sections)


def tiny_recipe_from(path: str | Path, **sections: Any) -> dict[str, Any]:
    """A recipe file's method on the tiny components, to smoke-test a published recipe offline.

    Keeps the file's name, seed, adapter, objective, protocol, train and eval sections and the
    dataset keys every dataset accepts (``shots``, ``augment``, ``on_bad_image``); the backbone
    becomes ``tiny-clip`` and the data ``tiny-colours``. ``requires:`` is dropped: it usually names
    the distributions of the replaced backbone and data. ``sections`` then extend the result as in
    :func:`tiny_recipe` (e.g. ``train={"epochs": 2}`` for a quick run).
    """
    from omegaconf import OmegaConf

    from .recipe import read_recipe_file

    given = OmegaConf.to_container(read_recipe_file(path), resolve=True)
    shared_data_keys = {f.name for f in dataclasses.fields(DataConfig)}
    data = {key: value for key, value in (given.get("data") or {}).items() if key in shared_data_keys}
    kept = {key: value for key, value in given.items() if key not in ("requires", "backbone", "data")}
    recipe = {**tiny_recipe(), **kept}
    recipe["data"] = {**recipe["data"], **data}
    return _extend(recipe, sections)


def _extend(recipe: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    for key, value in sections.items():
        recipe[key] = {**recipe[key], **value} if isinstance(value, dict) and key in recipe else value
    return recipe


def run_recipe(recipe: dict[str, Any] | str | Path, output_dir: str | Path, overrides: list[str] | None = None,
               seeds: list[int] | None = None) -> dict[str, Any]:
    """Run a recipe (a mapping or a YAML path) with the current plugin manager; return its summary."""
    from omegaconf import OmegaConf

    from .runner import run_recipe_file

    output_dir = Path(output_dir)
    if not isinstance(recipe, (str, Path)):
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / "input-recipe.yaml"
        OmegaConf.save(OmegaConf.create(recipe), path)
        recipe = path
    return run_recipe_file(recipe, overrides, output_dir=output_dir / "run", seeds=seeds)


def check_recipe(recipe: dict[str, Any], source: str = "recipe.yaml") -> Any:
    """Validate a recipe mapping against the current plugin manager; a ``UserError`` lists its problems."""
    from omegaconf import OmegaConf

    from .recipe import validate_recipe

    return validate_recipe(OmegaConf.create(recipe), source, [], registry=get_plugin_manager().registry)


def adapt_command(argv: list[str]) -> int:
    """Run the ``adapt`` command line in this process (current plugin manager); return its exit code."""
    from .cli import main

    return main(list(argv))


# -- unit-test helpers for adapters ---------------------------------------------------------------


def tiny_bundle(**options: Any) -> DataBundle:
    """The ``tiny-colours`` data (task and ``train``/``test`` splits); ``options`` are its config keys."""
    return tiny_colours_bundle(TinyColoursConfig(**options))


def make_batch(split: Split, backbone: Backbone, size: int = 16, task: Task | None = None) -> dict[str, Any]:
    """The first ``size`` items of ``split`` with the test transform of ``task``'s kind, collated as the engine does.

    Without ``task``, the classification transform (resize, crop, normalise for ``backbone``).
    """
    from .data import build_transforms, collate, split_transforms

    if task is None:
        _, test_transform = build_transforms(backbone.preprocessing)
    else:
        _, test_transform = split_transforms(task, backbone.preprocessing)
    view = split.with_transform(test_transform)
    batch = collate([view[i] for i in range(min(size, len(view)))])
    batch.pop("skipped")
    batch.pop("skipped_keys")
    return batch


@pytest.fixture
def tiny_backbone() -> Backbone:
    """A fresh tiny random-weight open_clip CLIP (ViT image tower, 32 x 32 images, embed_dim 32)."""
    from .testing_models import tiny_openclip_backbone

    return tiny_openclip_backbone()


@pytest.fixture
def tiny_task() -> Task:
    """The task of the tiny colour data: 4 classes (red, green, blue, yellow), single-label."""
    return tiny_bundle().task


@pytest.fixture
def tiny_batch(tiny_backbone: Backbone) -> dict[str, Any]:
    """16 training images of the tiny colour data (4 per class), preprocessed for ``tiny_backbone``.

    ``{"image": (16, 3, 32, 32) float tensor, "label": (16,) long tensor, "index": (16,) tensor}``.
    """
    return make_batch(tiny_bundle().split("train"), tiny_backbone, size=16)


def parameter_snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter, to compare against after training (see :func:`assert_only_trainable_changed`)."""
    return {name: param.detach().clone() for name, param in module.named_parameters()}


def assert_only_trainable_changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    """Assert that no frozen parameter changed since ``before`` and at least one trainable one did."""
    import torch

    frozen_changed, trainable_changed = [], []
    for name, param in module.named_parameters():
        if not torch.equal(param.detach(), before[name]):
            (trainable_changed if param.requires_grad else frozen_changed).append(name)
    assert not frozen_changed, f"frozen parameters changed: {frozen_changed[:10]}"
    assert trainable_changed, "no trainable parameter changed (are the gradients reaching them?)"


def train_steps(
    adapter: Adapter, batch: dict[str, Any], steps: int = 10, lr: float = 1e-2, loss_fn: LossFn | None = None
) -> list[float]:
    """Train ``adapter`` on one batch for ``steps`` Adam steps without the engine; return the losses.

    The optimiser gets exactly ``adapter.parameter_groups()``, as the engine's does. The default loss
    is cross-entropy on ``logits`` (binary cross-entropy for multi-label tasks); pass ``loss_fn`` for
    other outputs.
    """
    import torch

    loss_fn = loss_fn or _default_loss(adapter.task)
    params = [param for group in adapter.parameter_groups().values() for param in group]
    if not params:
        raise ValueError(f"{type(adapter).__name__} has no trainable parameters to train")
    optimizer = torch.optim.Adam(params, lr=lr)
    adapter.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(adapter(batch), batch)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _default_loss(task: Task) -> LossFn:
    import torch.nn.functional as F

    if task.kind == "single-label":
        return lambda outputs, batch: F.cross_entropy(outputs["logits"], batch["label"])
    if task.kind == "multi-label":
        return lambda outputs, batch: F.binary_cross_entropy_with_logits(outputs["logits"], batch["label"])
    raise ValueError(f"no default loss for {task.kind} tasks; pass loss_fn(outputs, batch)")


def assert_adapter_contract(adapter: Adapter, batch: dict[str, Any], loss_fn: LossFn | None = None) -> None:
    """Check what the engine relies on, on one batch; raise ``AssertionError`` naming the broken rule.

    - ``forward(batch)`` returns a non-empty dict; ``logits`` (if any) are finite, one row per image
      and one column per class.
    - ``parameter_groups()`` lists every trainable parameter exactly once, and nothing frozen;
      ``parameter_counts()["trainable"]`` agrees.
    - With ``frozen_image_features = True``, the outputs from precomputed ``image_features`` equal
      those from images (the engine's feature cache relies on it).
    - One training step (:func:`train_steps`) changes trainable parameters only, and
      ``load_trainable_state_dict(trainable_state_dict())`` restores the outputs exactly.
    """
    import torch

    from .adapter import Adapter

    assert isinstance(adapter, Adapter), f"{type(adapter).__name__} must subclass mmadapt.Adapter"
    adapter.eval()
    with torch.no_grad():
        outputs = adapter(batch)
    assert isinstance(outputs, dict) and outputs, "forward(batch) must return a dict: logits, features or images"
    if "logits" in outputs:
        shape, expected = tuple(outputs["logits"].shape), (len(batch["label"]), adapter.task.n_classes)
        assert shape == expected, f"logits shape {shape} != (batch size, n_classes) {expected}"
        assert torch.isfinite(outputs["logits"]).all(), "logits contain NaN or inf"

    groups = adapter.parameter_groups()
    grouped = [param for params in groups.values() for param in params]
    trainable = {id(param): param for param in adapter.parameters() if param.requires_grad}
    assert all(isinstance(name, str) and name and "." not in name for name in groups), (
        f"group names are recipe keys (train.param_groups.<name>): non-empty, without dots; got {list(groups)}"
    )
    assert len({id(param) for param in grouped}) == len(grouped), "a parameter is listed in two groups"
    assert {id(param) for param in grouped} == set(trainable), (
        "parameter_groups() must list exactly the parameters with requires_grad=True"
    )
    assert adapter.parameter_counts()["trainable"] == sum(param.numel() for param in trainable.values())

    if adapter.frozen_image_features and "image" in batch:
        with torch.no_grad():
            features = {"image_features": adapter.backbone.encode_image(batch["image"])}
            from_features = adapter({key: value for key, value in batch.items() if key != "image"} | features)
        for key, value in outputs.items():
            torch.testing.assert_close(from_features[key], value, msg=lambda m, key=key: (
                f"frozen_image_features=True, but {key!r} from batch['image_features'] differs from "
                f"{key!r} from batch['image']: {m}"))

    if not trainable:
        return
    saved = {name: tensor.clone() for name, tensor in adapter.trainable_state_dict().items()}
    before = parameter_snapshot(adapter)
    train_steps(adapter, batch, steps=1, loss_fn=loss_fn)
    assert_only_trainable_changed(adapter, before)
    adapter.load_trainable_state_dict(saved)
    adapter.eval()
    with torch.no_grad():
        restored = adapter(batch)
    for key, value in outputs.items():
        torch.testing.assert_close(restored[key], value, msg=lambda m, key=key: (
            f"{key!r} differs after load_trainable_state_dict(trainable_state_dict()): {m}"))


#: Modules an entry-point module must not import at top level (DESIGN.md: ``adapt --help`` stays fast).
HEAVY_MODULES = ("torch", "torchvision", "open_clip", "timm", "transformers", "diffusers")


def assert_kg_regularizer_contract(adapter: Adapter, batch: dict[str, Any], weight: float = 8.0) -> None:
    """What the builtin ``kg-regularizer`` objective needs from a text-prompt adapter, checked on ``batch``.

    The adapter must start from its hand-written prompts (e.g. a context initialised from "a photo
    of a" with the template "a photo of a {}."), report ``handwritten_text_features`` only once the
    objective asks for them, and pass gradients from the pull to its trainable parameters: at the
    start the loss is the cross-entropy; after the trainable parameters move it is cross-entropy +
    ``weight`` x (1 - mean cosine to the hand-written features).
    """
    import torch
    import torch.nn.functional as F

    adapter.train()
    assert "handwritten_text_features" not in adapter(batch), "hand-written features computed unasked"
    component = get_plugin_manager().registry.get("objective", "kg-regularizer")
    objective = component.build(component.config(weight=weight), adapter)
    loss, terms = objective(adapter(batch), batch)
    assert terms["kg_distance"].item() == pytest.approx(0.0, abs=1e-6), "prompts do not start hand-written"
    torch.testing.assert_close(loss, terms["cross_entropy"], atol=1e-5, rtol=0)

    trainable = [p for p in adapter.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in trainable:
            p.add_(torch.randn(p.shape, generator=generator).to(p))
    outputs = adapter(batch)
    loss, terms = objective(outputs, batch)
    cosine = F.cosine_similarity(outputs["text_features"].float(), outputs["handwritten_text_features"].float(), dim=-1)
    assert terms["kg_distance"].item() == pytest.approx(1 - cosine.mean().item(), abs=1e-6)
    assert terms["kg_distance"].item() > 1e-3
    assert loss.item() == pytest.approx(terms["cross_entropy"].item() + weight * terms["kg_distance"].item(), abs=1e-5)
    adapter.zero_grad(set_to_none=True)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable), "no gradient reached the prompts"


def assert_shared_prefix_exact(
    adapter: Adapter, batch: dict[str, Any], loss_fn: LossFn | None = None, atol: float = 1e-5
) -> None:
    """The adapter's text prompts go through the shared-prefix text pass, which changes neither its outputs
    nor its gradients.

    A training step's outputs, loss (``loss_fn``, cross-entropy by default) and the gradient of every
    trainable parameter are compared with every :class:`mmadapt.PromptLearner` of the adapter
    shared (``share_prefix``) and not; they must agree within ``atol``, relative to a tensor's
    largest entry where that exceeds 1 (fp32 sums over classes). The shared pass must have run.
    """
    import torch

    from .prompting import PromptLearner, prompt_tower

    learners = [m for m in adapter.modules() if isinstance(m, PromptLearner)]
    assert learners, f"{type(adapter).__name__} has no PromptLearner"
    tower = prompt_tower(adapter.backbone)
    loss_fn = loss_fn or _default_loss(adapter.task)
    trainable = {name: p for name, p in adapter.named_parameters() if p.requires_grad}
    calls = []
    original = tower.run_shared_prefix

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    results = []
    tower.run_shared_prefix = counted  # the instance attribute hides the method while counting
    try:
        for share in (True, False):
            for learner in learners:
                learner.share_prefix = share
            adapter.train()
            adapter.zero_grad(set_to_none=True)
            outputs = adapter(batch)
            loss = loss_fn(outputs, batch)
            loss = loss[0] if isinstance(loss, tuple) else loss
            loss.backward()
            grads = {name: p.grad.clone() for name, p in trainable.items() if p.grad is not None}
            tensors = {k: v.detach() for k, v in outputs.items() if isinstance(v, torch.Tensor)}
            results.append((len(calls), loss.detach(), tensors, grads))
    finally:
        del tower.run_shared_prefix
        for learner in learners:
            learner.share_prefix = True
        adapter.zero_grad(set_to_none=True)
    (shared_calls, *shared), (all_calls, *whole) = results
    assert shared_calls >= 1 and all_calls == shared_calls, "the shared-prefix pass did not run (or ran unasked)"

    def close(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
        scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
        torch.testing.assert_close(got, expected, atol=atol * scale, rtol=0, msg=lambda m: f"{what}: {m}")

    close(shared[0], whole[0], "loss")
    for key in whole[1]:
        close(shared[1][key], whole[1][key], f"output {key}")
    assert shared[2].keys() == whole[2].keys() and whole[2], "no gradient reached the trainable parameters"
    for name in whole[2]:
        close(shared[2][name], whole[2][name], f"gradient of {name}")


def assert_import_is_cheap(module: str, heavy: tuple[str, ...] = HEAVY_MODULES) -> None:
    """Import ``module`` in a fresh interpreter and assert it loads none of the ``heavy`` modules."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(m for m in {list(heavy)!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
    loaded = result.stdout.strip().splitlines()[-1]
    assert loaded == "[]", (
        f"importing {module} loads {loaded}; import them inside factories and handlers instead"
    )
