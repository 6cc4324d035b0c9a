"""Guidance adapters and losses: parameter counts, the residual and its shift, the ranking losses, isolation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt_lit import adapter as adapters
from mmadapt_lit import config as lit_configs
from mmadapt_lit.losses import (
    RANKING_PAIRS,
    guidance_loss,
    identity_loss,
    ranking_loss,
    residual_vector,
    shifted_residual,
)


def make(name, backbone, task, **options):
    configs = {
        "rave": lit_configs.RaveConfig,
        "clip-lit": lit_configs.ClipLitConfig,
        "clip-lit-latent": lit_configs.ClipLitLatentConfig,
    }
    builders = {
        "rave": adapters.RaveAdapter,
        "clip-lit": adapters.ClipLitAdapter,
        "clip-lit-latent": adapters.ClipLitLatentAdapter,
    }
    return builders[name](configs[name](**options), backbone, task)


@pytest.fixture(scope="module")
def clip_512():
    """A one-layer CLIP with OpenAI's text width (512) and joint width (512), random weights."""
    from mmadapt import OpenClipBackbone
    from mmadapt.testing_models import _clip_tokenizer
    from open_clip.model import CLIP

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=512,
        vision_cfg={"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 1},
    )
    return OpenClipBackbone(model.eval(), _clip_tokenizer(), name="clip 512")


def test_prompt_pair_and_latent_pair_have_the_papers_sizes(clip_512, image_task):
    prompts = make("clip-lit", clip_512, image_task).parameter_groups()["prompts"]
    latent = make("clip-lit-latent", clip_512, image_task).parameter_groups()["prompts"]
    assert sum(p.numel() for p in prompts) == 78_848 == 2 * 77 * 512
    assert sum(p.numel() for p in latent) == 1_024
    assert "prompts" not in make("rave", clip_512, image_task).parameter_groups()


def test_the_prompt_pair_starts_as_the_embedding_of_sixteen_xs(tiny_clip, image_task):
    adapter = make("clip-lit", tiny_clip, image_task)
    ids = tiny_clip.text.tokenize([" ".join(["X"] * 16)])
    expected = tiny_clip.text.token_embedding(ids)[0]
    assert torch.equal(adapter.prompts[0], expected) and torch.equal(adapter.prompts[1], expected)
    # The text pass from the embeddings equals encoding the words (the cut after the end token is exact).
    words = tiny_clip.encode_text(ids, normalize=True)[0]
    torch.testing.assert_close(adapter.prompt_features()[0], words, atol=1e-5, rtol=0)


def test_the_latent_adapter_needs_no_text_tower(image_task):
    from mmadapt.testing_models import tiny_timm_backbone

    adapter = make("clip-lit-latent", tiny_timm_backbone(), image_task)
    out = adapter({"views": torch.rand(3, 2, 3, 40, 40)})
    assert out["prompt_logits"].shape == (3, 2, 2)


def test_clip_lit_refuses_an_image_only_tower(image_task):
    from mmadapt import UserError
    from mmadapt.testing_models import tiny_timm_backbone

    with pytest.raises(UserError, match="clip-lit-latent"):
        make("clip-lit", tiny_timm_backbone(), image_task)


def test_residual_target_is_the_well_lit_mean_along_it_and_the_loss_is_zero_there():
    torch.manual_seed(0)
    well_lit, backlit = torch.randn(40, 16) + 1.0, torch.randn(30, 16) - 1.0
    found = residual_vector(well_lit, backlit)
    v, t, m_pos = found["residual"], found["target"], found["m_pos"]
    torch.testing.assert_close(v.norm(), torch.tensor(1.0))
    torch.testing.assert_close(t, m_pos @ v)
    assert float(guidance_loss(m_pos[None], v, t)) < 1e-12
    assert float(guidance_loss(F.normalize(backlit, dim=-1), v, t)) > 0.01
    # Any feature with cos = t scores 0: add a component orthogonal to v.
    orthogonal = F.normalize(torch.randn(16) - (torch.randn(16) @ v) * v, dim=0)
    orthogonal = F.normalize(orthogonal - (orthogonal @ v) * v, dim=0)
    on_target = t * v + (1 - t**2).sqrt() * orthogonal
    assert float(guidance_loss(on_target[None], v, t)) < 1e-12


def _rave_shift_by_loops(v, tokens, m_pos, count):
    """RAVE-shifted written out step by step in float64 (rank by cosine, weigh the raw features)."""
    v, tokens, m_pos = v.double(), tokens.double(), m_pos.double()
    scores = sorted(((float(e @ v / e.norm()), i) for i, e in enumerate(tokens)), reverse=True)

    def side(picked):
        total = sum(score * tokens[i] for score, i in picked) / len(picked)
        return total / total.norm()

    u = side(scores[:count]) + side(scores[-count:])
    u = u / u.norm()
    shifted = v - (u @ v) * u
    shifted = shifted / shifted.norm()
    return u, shifted, m_pos @ shifted


def test_the_shifted_residual_weighs_the_raw_token_features_and_is_orthogonal_to_their_direction():
    torch.manual_seed(1)
    v = F.normalize(torch.randn(32), dim=0)
    # Token features of very different norms, as a text tower's raw outputs are: weighing normalised
    # features instead gives another direction u.
    tokens = F.normalize(torch.randn(500, 32), dim=-1) * torch.empty(500, 1).uniform_(0.2, 5.0)
    m_pos = F.normalize(torch.randn(32), dim=0)
    found = shifted_residual(v, tokens, m_pos, tokens=15)
    u, shifted, target = _rave_shift_by_loops(v, tokens, m_pos, 15)
    torch.testing.assert_close(found["direction"].double(), u, atol=1e-5, rtol=0)
    torch.testing.assert_close(found["residual"].double(), shifted, atol=1e-5, rtol=0)
    torch.testing.assert_close(found["target"].double(), target, atol=1e-5, rtol=0)
    assert abs(float(found["residual"] @ found["direction"])) < 1e-6
    normalised = shifted_residual(v, F.normalize(tokens, dim=-1), m_pos, tokens=15)["direction"]
    assert float(normalised @ found["direction"]) < 0.999
    similarity = F.normalize(tokens, dim=-1) @ v
    assert similarity[found["top"]].min() >= similarity.quantile(0.96)
    assert similarity[found["bottom"]].max() <= similarity.quantile(0.04)


def _train_latent_ranking(cached: int, steps: int = 300) -> tuple[float, float]:
    """Fit a latent pair to separable clusters, one per rank; the first and the final ranking loss."""
    torch.manual_seed(0)
    ranks = 2 + cached
    centres = F.normalize(torch.randn(ranks, 24), dim=-1) * 4
    features = F.normalize(centres[None] + 0.1 * torch.randn(64, ranks, 24), dim=-1)
    # Both prompts start at one vector, as CLIP-LIT's pair does, so the softmax starts unsaturated.
    prompts = torch.nn.Parameter(torch.randn(1, 24).repeat(2, 1) + 0.01 * torch.randn(2, 24))
    optimizer = torch.optim.Adam([prompts], lr=0.05)
    losses = []
    for _ in range(steps):
        negative = (100 * features @ F.normalize(prompts, dim=-1).t()).softmax(-1)[..., 0]
        loss = ranking_loss(negative, cached)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def test_the_two_way_ranking_loss_reaches_zero_on_separable_embeddings():
    first, last = _train_latent_ranking(0)
    assert first > 0.5 and last < 1e-3


@pytest.mark.parametrize("cached", [1, 2])
def test_the_ranking_with_cached_outputs_bottoms_out_at_its_margins_conflict(cached):
    # b - out >= 0.9 and out - w >= 0.2 cannot both hold for probabilities (their sum exceeds 1), so the
    # best any prompts can do is 0.1. On separable embeddings training lowers the loss, never below that.
    # (With two cached outputs it settles at 0.2, both outputs saturated on the well-lit side.)
    pairs = RANKING_PAIRS[cached]
    assert sum(m for hi, lo, m in pairs if hi == 0 and lo != 1) + sum(m for hi, lo, m in pairs if hi != 0) > 1
    first, last = _train_latent_ranking(cached)
    assert 0.1 - 1e-6 <= last < {1: 0.15, 2: 0.21}[cached] < first


def test_identity_loss_is_summed_over_images_and_weighted_per_level():
    a, b = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    maps_a, maps_b = torch.zeros(2, 4, 2, 2), torch.full((2, 4, 2, 2), 2.0)
    loss = identity_loss([a, maps_a], [b, maps_b], [1.0, 0.5])
    assert float(loss) == pytest.approx(2 * 1.0 + 0.5 * 2 * 4.0)


def test_default_identity_levels_spread_over_the_tower():
    from mmadapt_lit.adapter import default_levels

    assert default_levels(5) == [0, 1, 2, 3, 4]
    assert default_levels(4) == [0, 1, 2, 3]
    assert default_levels(12) == [0, 3, 6, 8, 11]


def test_enhancement_gradients_reach_only_the_network_and_the_tower_is_untouched(shapes_clip, image_task):
    adapter = make("clip-lit", shapes_clip, image_task, network="zero-dce++")
    adapter.prompts.requires_grad_(False)  # the enhancement stage freezes the prompts (run.fit does this)
    tower = {k: v.clone() for k, v in shapes_clip.state_dict().items()}
    images = torch.rand(2, 3, 24, 40)
    out = adapter({"image": images})["images"]
    loss = adapter.embed(out).sum() + adapter.identity(out, images)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapter.network.parameters())
    assert adapter.prompts.grad is None
    assert all(p.grad is None for p in shapes_clip.parameters())
    assert all(torch.equal(v, shapes_clip.state_dict()[k]) for k, v in tower.items())


def test_a_second_backbone_can_serve_the_identity_loss(tiny_plugin, shapes_clip, image_task):
    from mmadapt import validate_section

    identity = validate_section("backbone", {"name": "tiny-clip", "arch": "resnet"}, where="adapter.identity_backbone")
    adapter = make("rave", shapes_clip, image_task, network="zero-dce++", identity_backbone=identity)
    assert adapter.identity_tower is not shapes_clip
    assert adapter.levels == [0, 1, 2, 3, 4] and adapter.level_weights == [1.0, 1.0, 1.0, 1.0, 0.5]
    images = torch.rand(2, 3, 24, 40)
    maps = adapter.intermediates(images)
    assert [m.ndim for m in maps] == [4] * 5  # a ResNet's stem and four stages, not ViT tokens
    adapter.identity(adapter.enhance(images), images).backward()
    assert all(p.grad is not None for p in adapter.network.parameters())
    assert all(p.grad is None for p in adapter.identity_tower.parameters())
    # The second tower stays out of checkpoints and parameter groups.
    assert set(adapter.trainable_state_dict()) == {f"network.{k}" for k in adapter.network.state_dict()} | {
        "residual",
        "residual_target",
    }
    assert sum(len(group) for group in adapter.parameter_groups().values()) == len(list(adapter.network.parameters()))


def test_a_bad_identity_backbone_section_names_its_key():
    from mmadapt import SectionError, validate_section

    with pytest.raises(SectionError, match="adapter.identity_backbone"):
        rave = {"name": "rave", "identity_backbone": {"name": "no-such-backbone"}}
        validate_section("adapter", rave, where="adapter")
