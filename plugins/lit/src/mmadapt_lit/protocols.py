"""The ``rave`` and ``clip-lit`` protocols and their shared evaluation (metrics, guidance figures, grid).

``rave``: one frozen pass gives the residual (kept in ``run.state``), the identity warm-up, then one
enhancement stage. ``clip-lit``: prompt initialisation, the identity warm-up, then rounds of an
enhancement stage and a margin-ranking prompt stage, the enhanced outputs of the newest rounds cached
(as 8-bit images) in ``run.state``. The prompt stages embed a fresh augmented view of every item
(:mod:`.views`), as CLIP-LIT's prompt loaders do. Every stage is a named ``run.fit`` stage, so a killed
run resumes where it stopped.
"""

from __future__ import annotations

import typing

import torch
from mmadapt import Protocol, Split, UserError

from .images import grid_image, reference_scores
from .losses import clip_loss, ranking_loss, residual_vector
from .roles import Roles, check_bundle, evaluation_inputs, split_roles
from .stages import preprocessed_features, warm_up
from .views import PromptViews, resized, to_pixels


@typing.runtime_checkable
class Enhancer(typing.Protocol):
    """An enhancement adapter guided through a frozen image tower (rave, clip-lit, clip-lit-latent)."""

    #: How it is guided: ``rave``, ``clip-lit`` or ``clip-lit-latent``.
    guidance: str
    #: The image tower's blocks whose features the identity loss compares.
    levels: list[int]

    def enhance(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """The enhanced images, the same sizes as the inputs."""

    def embed(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Unit-norm image features (B, D); differentiable."""

    def identity(self, outputs, inputs, weights: list[float] | None = None) -> torch.Tensor:
        """The identity loss between enhanced images and their inputs."""

    def prompt_features(self) -> torch.Tensor:
        """Unit-norm features (2, D) of the negative and positive prompts."""

    def reset_network(self, seed: int) -> None:
        """Re-initialise the enhancement network from ``seed``."""


@typing.runtime_checkable
class ResidualEnhancer(Enhancer, typing.Protocol):
    """An enhancement adapter guided along a residual vector that the protocol sets (rave)."""

    def set_residual(self, residual: torch.Tensor, target: torch.Tensor) -> None:
        """Use ``residual`` (unit norm, (D,)) and its target from now on."""


class LitProtocol(Protocol):
    """What both protocols share: data checks, the residual pass and the evaluation."""

    adapter_interface = Enhancer
    #: Adapter guidance kinds this protocol trains.
    guidances: tuple[str, ...] = ()

    def prepare(self, bundle):
        """Check the data: image-to-image, and for unpaired data both class folders non-empty."""
        return check_bundle(bundle, self.config)

    def check_adapter(self, run) -> None:
        """Refuse an adapter this protocol cannot train, naming the fix."""
        if run.adapter.guidance not in self.guidances:
            raise UserError(
                f"protocol {self.name!r} trains adapters {', '.join(self.guidances)}; the recipe's "
                f"adapter is {run.adapter.guidance}"
            )

    def roles(self, run) -> Roles:
        """The training split's backlit inputs and well-lit references."""
        return split_roles(run.bundle, "train", self.config)

    def residual(self, run, roles: Roles) -> dict[str, torch.Tensor]:
        """RAVE's residual of the training data (computed once, then read from ``run.state``).

        The images are embedded with the backbone's preprocessing (CLIP's: bicubic resize of the
        shorter side, centre crop), as RAVE does, not with the in-graph square resize of training.
        """
        if "residual/vector" not in run.state:
            well_lit = preprocessed_features(run, roles.well_lit, roles.well_lit_key)
            backlit = preprocessed_features(run, roles.backlit)
            found = residual_vector(well_lit, backlit)
            run.state["residual/vector"] = found["residual"]
            for key in ("target", "m_pos", "m_neg"):
                run.state[f"residual/{key}"] = found[key]
        return {
            key: run.state[f"residual/{key}"]
            for key in ("vector", "target", "m_pos", "m_neg")
            if f"residual/{key}" in run.state
        }

    def evaluate(self, run) -> dict[str, float]:
        """The recipe's metrics on the test inputs, the inputs' own scores, guidance figures and the grid."""
        self.check_adapter(run)
        test = evaluation_inputs(run.bundle, "test", self.config)
        metrics = run.evaluate(test, prefix="test")
        metrics.update(self.guidance_figures(run, test))
        write_grid(run, test, self.config.grid_images)
        return metrics

    def guidance_figures(self, run, test: Split) -> dict[str, float]:
        """cos(Φ(x), v_res) of test inputs, outputs (and targets), t, p_pos of the prompts, the inputs' scores."""
        adapter = run.adapter
        adapter.eval()
        residual = run.state.get("residual/vector")
        prompts = adapter.prompt_features().detach() if adapter.guidance != "rave" else None

        def figures(batch: dict) -> dict:
            images = batch["image"]
            outputs = adapter.enhance(images)
            found = {}
            shown = [("input", images), ("output", outputs)] + (
                [("target", batch["target"])] if "target" in batch else []
            )
            for name, pictures in shown:
                features = adapter.embed(pictures)
                if residual is not None:
                    found[f"cos_{name}"] = features @ residual.to(features)
                if prompts is not None:
                    found[f"p_pos_{name}"] = (100.0 * features @ prompts.t()).softmax(-1)[:, 1]
            if "target" in batch:
                found.update(reference_scores(images, batch["target"], prefix="input_"))
            return found

        values = run.features(test, figures, desc="guidance figures")
        results = {f"test/{key}": float(value.float().mean()) for key, value in values.items() if key != "index"}
        if residual is not None:
            results["test/residual_target"] = float(run.state["residual/target"])
            for name in ("input", "output"):
                results[f"test/gap_{name}"] = abs(results[f"test/cos_{name}"] - results["test/residual_target"])
        return results

    @property
    def name(self) -> str:
        """The protocol's registered name."""
        return self.guidances[0]


def write_grid(run, test: Split, count: int) -> None:
    """``before-after.png`` in the run directory: input, output (and target) of the first test images.

    Collective, like ``run.features``: every process computes the pictures, the main one writes them.
    """
    adapter = run.adapter
    adapter.eval()
    shown = test.subset(range(min(count, len(test))))

    def pictures(batch: dict) -> dict:
        images = batch["image"]
        rows = {"input": list(images), "output": list(adapter.enhance(images))}
        if "target" in batch:
            rows["target"] = list(batch["target"])
        return rows

    values = run.features(shown, pictures, desc="before/after grid")
    columns = [key for key in ("input", "output", "target") if key in values]
    rows = [[values[key][i] for key in columns] for i in range(len(values.get("index", [])))]
    if rows:
        run.save_figure("before-after.png", grid_image(rows))


class RaveProtocol(LitProtocol):
    """``rave``: residual pass, identity warm-up, one enhancement stage with 6·320·L_guid + 0.9·25·L_id."""

    adapter_interface = ResidualEnhancer
    guidances = ("rave",)

    def run(self, run) -> dict[str, float]:
        """Compute (or restore) the residual, warm the network up, train it, evaluate."""
        from .stages import rave_objective
        from .vocabulary import shift_residual

        self.check_adapter(run)
        roles = self.roles(run)
        found = self.residual(run, roles)
        vector, target = found["vector"], found["target"]
        if run.adapter.config.shifted:
            if "residual/shifted_vector" not in run.state:
                shifted = shift_residual(run.adapter, vector, found["m_pos"])
                run.state["residual/shifted_vector"] = shifted["residual"]
                run.state["residual/shifted_target"] = shifted["target"]
            vector, target = run.state["residual/shifted_vector"], run.state["residual/shifted_target"]
        run.adapter.set_residual(vector, target)
        warm_up(run, roles.backlit, self.config)
        config = self.config
        objective = rave_objective(run.adapter, config.guidance_weight, config.identity_weight, run.batch_parts)
        run.fit(
            roles.backlit,
            stage="enhance",
            iterations=config.enhance_iterations,
            groups=["network"],
            objective=objective,
            batch_size=config.enhance_batch_size,
        )
        return {**self.warmup_figures(run), **self.evaluate(run)}

    @staticmethod
    def warmup_figures(run) -> dict[str, float]:
        """The Y-PSNR(input, output) of each warm-up try, as kept in ``run.state``."""
        return {key: float(value) for key, value in run.state.items() if key.startswith("warmup/")}


class ClipLitProtocol(LitProtocol):
    """``clip-lit``: prompt init, identity warm-up, rounds of enhancement and prompt refinement."""

    guidances = ("clip-lit", "clip-lit-latent")

    def run(self, run) -> dict[str, float]:
        """Initialise the prompts, warm the network up, alternate the two stages ``rounds`` times, evaluate."""
        self.check_adapter(run)
        config = self.config
        roles = self.roles(run)
        self.residual(run, roles)  # for the guidance figures only: CLIP-LIT trains without it
        size = config.prompt_view_size
        labelled = [[(roles.backlit, i, "image")] for i in range(len(roles.backlit))]
        labelled += [[(roles.well_lit, i, roles.well_lit_key)] for i in range(len(roles.well_lit))]
        init = PromptViews(labelled, [0] * len(roles.backlit) + [1] * len(roles.well_lit), 2, size)
        run.fit(
            init,
            stage="prompt-init",
            iterations=config.prompt_init_iterations,
            groups=["prompts"],
            objective=_prompt_init_objective,
            batch_size=config.prompt_init_batch_size,
        )
        warm_up(run, roles.backlit, config)
        for round_index in range(1, config.rounds + 1):
            run.fit(
                roles.backlit,
                stage=f"round{round_index}-enhance",
                iterations=config.enhance_iterations,
                groups=["network"],
                objective=self.enhance_objective(run),
                batch_size=config.enhance_batch_size,
            )
            cached = self.cache_outputs(run, roles, round_index)
            ranked = [
                [(roles.backlit, i, "image"), (roles.well_lit, i % len(roles.well_lit), roles.well_lit_key)]
                + [outputs[i] for outputs in cached]
                for i in range(len(roles.backlit))
            ]
            run.fit(
                PromptViews(ranked, None, 0, size),
                stage=f"round{round_index}-prompts",
                iterations=config.prompt_iterations,
                groups=["prompts"],
                objective=_ranking_objective(config.rank_weight, len(cached)),
                batch_size=config.prompt_batch_size,
            )
        return {**RaveProtocol.warmup_figures(run), **self.evaluate(run)}

    def cache_outputs(self, run, roles: Roles, round_index: int) -> list[torch.Tensor]:
        """This round's enhanced training images as 8-bit views, newest first, with the earlier ones kept.

        CLIP-LIT saves its outputs as 256 x 256 PNGs and embeds them again, augmented, in the next
        prompt stage; here the network enhances each image at its own size and the output is kept as
        the 8-bit S x S pixels a view starts from. Kept in ``run.state`` (saved with the next
        checkpoint), so a resumed run ranks the same images.
        """
        key = f"outputs/round{round_index}"
        if key not in run.state:
            run.state[key] = enhanced_views(run, roles.backlit, self.config.prompt_view_size)
        for old in range(1, round_index - self.config.cached_outputs + 1):
            run.state.pop(f"outputs/round{old}", None)
        newest = range(round_index, max(0, round_index - self.config.cached_outputs), -1)
        return [run.state[f"outputs/round{r}"] for r in newest]

    def enhance_objective(self, run):
        """``clip_weight * L_clip + identity_weight * L_id``; the prompts are frozen, their features computed once."""
        adapter, config, parts = run.adapter, self.config, run.batch_parts
        prompts: dict[str, torch.Tensor] = {}

        def objective(outputs: dict, batch: dict):
            if "features" not in prompts:
                with torch.no_grad():
                    prompts["features"] = adapter.prompt_features()
            guidance = clip_loss(adapter.embed(outputs["images"]), prompts["features"])
            identity = adapter.identity(outputs["images"], batch["image"])
            # L_id sums over the images: counted once per part of the batch, as in rave_objective.
            return config.clip_weight * guidance + config.identity_weight * parts * identity, {
                "clip": guidance,
                "identity": identity,
            }

        return objective


def enhanced_views(run, split: Split, size: int) -> torch.Tensor:
    """The network's outputs for ``split``'s images as 8-bit pixels resized to ``size`` x ``size`` (N, 3, S, S)."""
    from PIL import Image

    adapter = run.adapter
    adapter.eval()

    def views(batch: dict) -> dict:
        outputs = adapter.enhance(batch["image"])
        pictures = [Image.fromarray(to_pixels(out).permute(1, 2, 0).numpy()) for out in outputs]
        return {"views": torch.stack([resized(picture, size) for picture in pictures])}

    return run.features(split, views, desc="enhanced views")["views"]


def _prompt_init_objective(outputs: dict, batch: dict):
    loss = torch.nn.functional.cross_entropy(outputs["prompt_logits"][:, 0], batch["label"])
    return loss, {"prompt_ce": loss}


def _ranking_objective(weight: float, cached: int):
    def objective(outputs: dict, batch: dict):
        negative = outputs["prompt_logits"].softmax(dim=-1)[..., 0]
        loss = ranking_loss(negative, cached)
        return weight * loss, {"rank": loss}

    return objective
