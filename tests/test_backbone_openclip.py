"""The ``openclip`` backbone on tiny random CLIPs: text path, image tokens, prompts, prefixes, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mmadapt.backbone import Backbone
from mmadapt.builtin.config import OpenClipConfig
from mmadapt.builtin.openclip import OpenClipBackbone
from mmadapt.builtin.plugin import register_backbones
from mmadapt.errors import UserError
from mmadapt.testing_models import TINY_IMAGE_SIZE, tiny_openclip_backbone, tiny_openclip_config
from mmadapt.towers import TextTower, TokenImageTower
from torch import nn
from tower_calls import image_tokens, prompted_features

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clip() -> OpenClipBackbone:
    return tiny_openclip_backbone("vit")


@pytest.fixture(scope="module")
def resnet() -> OpenClipBackbone:
    return tiny_openclip_backbone("resnet")


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=torch.Generator().manual_seed(0))


TEXTS = ["a photo of a dog.", "a photo of a sea_lion, a type of animal.", "x"]


# -- text ---------------------------------------------------------------------------------------


def assert_embedding_path_matches_encode_text(backbone: OpenClipBackbone) -> None:
    """Prompt learners' path (token embeddings in, EOT pooling) gives encode_text's features."""
    ids = backbone.text.tokenize(TEXTS)
    torch.testing.assert_close(
        backbone.text.encode_embeddings(backbone.text.token_embedding(ids), backbone.text.eot_index(ids)),
        backbone.encode_text(ids),
        atol=1e-5,
        rtol=0,
    )

def test_text_embeddings_path_equals_encode_text(clip: OpenClipBackbone) -> None:
    ids = clip.text.tokenize(TEXTS)
    eot = clip.text.eot_index(ids)
    expected = clip.encode_text(ids)
    full = clip.text.encode_embeddings(clip.text.token_embedding(ids), eot)
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=0)

    length = int(eot.max()) + 1
    truncated = clip.text.encode_embeddings(clip.text.token_embedding(ids[:, :length]), eot)
    assert length < clip.text.context_length
    torch.testing.assert_close(truncated, expected, atol=1e-5, rtol=0)


def test_text_shapes_and_normalisation(clip: OpenClipBackbone) -> None:
    ids = clip.text.tokenize(TEXTS)
    assert ids.shape == (3, clip.text.context_length) == (3, 77)
    assert clip.text.token_embedding(ids).shape == (3, 77, clip.text.width)
    features = clip.text.encode_embeddings(clip.text.token_embedding(ids), clip.text.eot_index(ids))
    assert features.shape == (3, clip.embed_dim)
    torch.testing.assert_close(clip.encode_text(ids, normalize=True).norm(dim=-1), torch.ones(3))


def test_text_longer_than_context_is_rejected(clip: OpenClipBackbone) -> None:
    embeds = torch.zeros(1, clip.text.context_length + 1, clip.text.width)
    with pytest.raises(ValueError, match="text positions"):
        clip.text.encode_embeddings(embeds, torch.tensor([3]))


def test_a_text_tower_pooling_elsewhere_is_a_plain_text_tower(monkeypatch: pytest.MonkeyPatch) -> None:
    from open_clip.model import CLIP

    model = CLIP(**tiny_openclip_config("vit"))
    monkeypatch.setattr(model, "text_pool_type", "last")
    backbone = OpenClipBackbone(model)
    assert type(backbone.text).__name__ == "OpenClipTextTower" and not backbone.text.causal
    with pytest.raises(UserError, match="has no token text tower .*: use a linear head"):
        backbone.require_token_text_tower("prompts need it", "use a linear head")


@pytest.mark.parametrize(("arch", "causal"), [("ViT-S-32", True), ("MobileCLIP-S1", False)])
def test_causal_text_is_read_from_the_model(arch: str, causal: bool) -> None:
    backbone = OpenClipBackbone.from_config(OpenClipConfig(arch=arch, pretrained=None))
    assert backbone.text.causal is causal
    ids = backbone.text.tokenize(TEXTS)
    eot = backbone.text.eot_index(ids)
    length = int(eot.max()) + 1
    cut = backbone.text.encode_embeddings(backbone.text.token_embedding(ids[:, :length]), eot)
    # The property's promise: features at the end token are unchanged by cutting exactly when causal.
    assert torch.allclose(cut, backbone.encode_text(ids), atol=1e-5) is causal


def test_causal_text_defaults_to_false() -> None:
    assert TextTower.causal.fget(object()) is False


def test_vocabulary_decodes_every_token_on_its_own(clip: OpenClipBackbone) -> None:
    vocabulary = clip.text.vocabulary()
    assert len(vocabulary) == clip.text.vocab_size == 49408
    ids = clip.text.tokenize(["a photo of a dog"])[0]
    words = [vocabulary[int(i)] for i in ids[1 : int(clip.text.eot_index(ids[None])[0])]]
    assert words == ["a", "photo", "of", "a", "dog"]
    assert vocabulary[int(ids[0])] == "<start_of_text>"
    # A standalone token, tokenized again as a prompt, is that token between start and end.
    assert clip.text.tokenize([vocabulary[int(ids[2])]])[0, 1] == ids[2]


def test_vocabulary_needs_a_known_tokenizer(clip: OpenClipBackbone) -> None:
    other = OpenClipBackbone(clip.model, tokenizer=lambda texts: clip.text.tokenize(texts), name="custom")
    with pytest.raises(NotImplementedError, match="custom text tower: a vocabulary needs open_clip's"):
        other.text.vocabulary()


@pytest.mark.parametrize(
    ("arch", "hf_model"), [("roberta-ViT-B-32", "roberta-base"), ("nllb-clip-base", "facebook/nllb-200-distilled-600M")]
)
def test_hugging_face_text_towers_offline_say_what_is_missing(arch: str, hf_model: str, unreachable_hub) -> None:
    with pytest.raises(UserError) as caught:
        OpenClipBackbone.from_config(OpenClipConfig(arch=arch, pretrained=None))
    message = str(caught.value)
    assert f"the Hugging Face model '{hf_model}" in message and f"the text tower of {arch!r}" in message
    assert "HF_HUB_CACHE" in message


def test_text_projection_as_linear() -> None:
    from open_clip.model import CLIP

    config = tiny_openclip_config("vit")
    config["text_cfg"]["proj_bias"] = True
    backbone = OpenClipBackbone(CLIP(**config))  # also covers the default tokenizer
    assert isinstance(backbone.model.text_projection, nn.Linear)
    assert_embedding_path_matches_encode_text(backbone)


# -- image tokens, prompts, prefixes ------------------------------------------------------------


def test_image_tokens_final_cls_projects_to_encode_image(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    (tokens,) = image_tokens(clip, pixels)
    assert tokens.shape == (2, 1 + (TINY_IMAGE_SIZE // 8) ** 2, clip.image.width)
    torch.testing.assert_close(tokens[:, 0] @ clip.image.projection, clip.encode_image(pixels), atol=1e-6, rtol=0)


def test_image_tokens_per_layer(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    first, last = image_tokens(clip, pixels, layers=[0, -1])
    torch.testing.assert_close(last, image_tokens(clip, pixels)[0])
    expected_first = clip.model.visual.transformer.resblocks[0](clip.image.embed(pixels))
    torch.testing.assert_close(first, expected_first)
    with pytest.raises(ValueError, match="out of range"):
        image_tokens(clip, pixels, layers=[2])


def test_prompted_without_prompts_equals_encode_image(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    expected = clip.encode_image(pixels)
    torch.testing.assert_close(prompted_features(clip, pixels), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(prompted_features(clip, pixels, prefixes=[None, None]), expected, atol=1e-6, rtol=0)


def test_empty_prefixes_run_our_attention_exactly(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    width = clip.image.width
    empty = (torch.zeros(1, 0, width), torch.zeros(1, 0, width))
    prompted = prompted_features(clip, pixels, prefixes=[empty, empty])
    torch.testing.assert_close(prompted, clip.encode_image(pixels), atol=1e-6, rtol=0)


def test_prefix_attention_matches_multihead_attention_bias_kv(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    """``nn.MultiheadAttention(add_bias_kv=True)`` appends one key/value after projection: a 1-token prefix."""
    block = clip.image.blocks[0]
    attn = block.block.attn
    reference = nn.MultiheadAttention(clip.image.width, attn.num_heads, add_bias_kv=True, batch_first=True)
    reference.load_state_dict({**attn.state_dict(), "bias_k": torch.randn(1, 1, 64), "bias_v": torch.randn(1, 1, 64)})
    x = block.norm1(clip.image.embed(pixels))
    expected = reference(x, x, x, need_weights=False)[0]
    got = block.attention(x, (reference.bias_k, reference.bias_v))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_block_parts_recompose_the_block(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    block = clip.image.blocks[1]
    x = clip.image.embed(pixels)
    x = x + block.attention(block.norm1(x))
    torch.testing.assert_close(x + block.feed_forward(x), block(clip.image.embed(pixels)))


def test_prompts_and_prefixes_train_and_backbone_stays_frozen(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    width = clip.image.width
    prompts = (0.5 * torch.randn(1, 3, width)).requires_grad_()
    keys = torch.randn(2, 4, width, requires_grad=True)
    values = torch.randn(1, 4, width, requires_grad=True)
    out = prompted_features(clip, pixels, prompts=prompts, prefixes=[None, (keys, values)], normalize=True)
    assert out.shape == (2, clip.embed_dim)
    assert not torch.allclose(out, clip.encode_image(pixels, normalize=True), atol=1e-4)
    out.sum().backward()
    for tensor in (prompts, keys, values):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in clip.parameters())


def first_block_input(backbone: OpenClipBackbone, run: Callable[[], object]) -> torch.Tensor:
    """The tokens (batch first) that enter the first vision block while ``run()`` runs."""
    seen = []
    first = backbone.model.visual.transformer.resblocks[0]
    handle = first.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        run()
    finally:
        handle.remove()
    return seen[0] if backbone.model.visual.transformer.batch_first else seen[0].transpose(0, 1)


def test_zero_patch_offsets_change_nothing(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    zero = torch.zeros((TINY_IMAGE_SIZE // 8) ** 2, clip.image.width)
    expected = clip.encode_image(pixels)
    torch.testing.assert_close(prompted_features(clip, pixels, patch_offsets=zero), expected, atol=1e-6, rtol=0)
    tokens = image_tokens(clip, pixels, layers=[0, 1], patch_offsets=zero[None].expand(2, -1, -1))
    for got, want in zip(tokens, image_tokens(clip, pixels, layers=[0, 1])):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_patch_offsets_reach_only_the_patch_tokens(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    offsets = torch.randn(2, (TINY_IMAGE_SIZE // 8) ** 2, clip.image.width, requires_grad=True)
    prompts = torch.randn(1, 3, clip.image.width)
    plain = clip.image.embed(pixels)
    entering = first_block_input(
        clip, lambda: prompted_features(clip, pixels, prompts=prompts, patch_offsets=offsets).sum().backward()
    )
    torch.testing.assert_close(entering[:, :1], plain[:, :1], atol=0, rtol=0)  # the class token
    torch.testing.assert_close(entering[:, 1:4], prompts.expand(2, -1, -1), atol=0, rtol=0)
    torch.testing.assert_close(entering[:, 4:], plain[:, 1:] + offsets, atol=1e-6, rtol=0)
    assert offsets.grad is not None and offsets.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"replaced positions 1 .. 17 must lie within the input"):
        clip.image.run(clip.image.embed(pixels), replace={0: (1, torch.zeros(1, 17, 64))})


def test_bad_prompt_shape_is_explained(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"inserted tokens must have shape \(B or 1, P, 64\)"):
        prompted_features(clip, pixels, prompts=torch.zeros(1, 3, 7))
    with pytest.raises(ValueError, match="prefixes for 3 blocks, the tower has 2"):
        prompted_features(clip, pixels, prefixes=[None, None, None])
    with pytest.raises(ValueError, match=r"insert names blocks \[2\]; the tower has blocks 0 .. 1"):
        clip.image.run(clip.image.embed(pixels), insert={2: torch.zeros(1, 3, 64)})


# -- preprocessing in the graph -----------------------------------------------------------------


def test_preprocess_in_graph_matches_manual_path(clip: OpenClipBackbone) -> None:
    images = torch.rand(2, 3, 45, 60, requires_grad=True)
    prep = clip.preprocessing
    resized = nn.functional.interpolate(images, size=(prep.size, prep.size), mode="bilinear", align_corners=False)
    manual = (resized - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)
    features = clip.encode_image(images, preprocess=True)
    torch.testing.assert_close(features, clip.encode_image(manual), atol=1e-6, rtol=0)
    features.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_preprocessing_defaults(clip: OpenClipBackbone) -> None:
    prep = clip.preprocessing
    assert prep.size == TINY_IMAGE_SIZE
    assert prep.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert clip.logit_scale.ndim == 0 and float(clip.logit_scale) == pytest.approx(1 / 0.07)


# -- ResNet tower -------------------------------------------------------------------------------


def test_resnet_tower(resnet: OpenClipBackbone, pixels: torch.Tensor) -> None:
    assert resnet.encode_image(pixels).shape == (2, resnet.embed_dim)
    assert_embedding_path_matches_encode_text(resnet)
    features = resnet.image.intermediates(pixels)
    assert [f.shape[-1] for f in features] == [8, 8, 4, 2, 1]
    assert features[-1].shape[1] == resnet.image.width
    visual = resnet.model.visual
    x = visual.stem(pixels)
    expected = [x]
    for stage in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        x = stage(x)
        expected.append(x)
    for got, want in zip(features, expected):
        torch.testing.assert_close(got, want)
    stem, deepest = resnet.image.intermediates(pixels, layers=[0, -1])
    torch.testing.assert_close(stem, expected[0])
    torch.testing.assert_close(deepest, expected[-1])
    with pytest.raises(ValueError, match=r"indices \[5\] out of range for a tower of 5 levels"):
        resnet.image.intermediates(pixels, layers=[5])
    assert not isinstance(resnet.image, TokenImageTower)
    with pytest.raises(UserError, match="tiny openclip resnet has no ViT image tower .*ModifiedResNet"):
        resnet.require_token_image_tower("prompts", "fix")


def test_vit_intermediates_are_the_blocks_residual_stream(clip: OpenClipBackbone, pixels: torch.Tensor) -> None:
    images = pixels.clone().requires_grad_()
    first, last = clip.image.intermediates(images)
    assert clip.image.intermediates(images, layers=[-1, 0])[1].shape == first.shape
    torch.testing.assert_close(first, image_tokens(clip, pixels, layers=[0])[0])
    # image_tokens' last entry has the final norm; the intermediates are the raw stream.
    torch.testing.assert_close(clip.image.final_norm(last), image_tokens(clip, pixels)[0])
    last.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="out of range for a tower of 2 blocks"):
        clip.image.intermediates(pixels, layers=[-3])


def test_frozen_modules_stay_in_eval_mode(resnet: OpenClipBackbone, pixels: torch.Tensor) -> None:
    assert isinstance(resnet, Backbone)
    assert not any(p.requires_grad for p in resnet.parameters())
    stats = resnet.model.visual.bn1.running_mean.clone()
    resnet.train()
    try:
        assert resnet.training and not resnet.model.training
        resnet.encode_image(pixels)
        assert torch.equal(stats, resnet.model.visual.bn1.running_mean)
    finally:
        resnet.eval()


# -- building from a recipe section -------------------------------------------------------------


def test_local_checkpoint_of_a_registered_config(tmp_path, clip: OpenClipBackbone) -> None:
    import open_clip

    (tmp_path / "mmadapt-test-tiny-vit.json").write_text(json.dumps(tiny_openclip_config("vit")))
    open_clip.add_model_config(tmp_path / "mmadapt-test-tiny-vit.json")
    checkpoint = tmp_path / "tiny.pt"
    torch.save(clip.model.state_dict(), checkpoint)

    built = OpenClipBackbone.from_config(OpenClipConfig(arch="mmadapt-test-tiny-vit", pretrained=str(checkpoint)))
    ids = built.text.tokenize(TEXTS)
    torch.testing.assert_close(built.encode_text(ids), clip.encode_text(ids))
    assert not any(p.requires_grad for p in built.parameters())

    with pytest.raises(UserError, match="cannot load checkpoint"):
        torch.save({"bogus": torch.zeros(1)}, tmp_path / "bad.pt")
        OpenClipBackbone.from_config(OpenClipConfig(arch="mmadapt-test-tiny-vit", pretrained=str(tmp_path / "bad.pt")))


def test_offline_tag_explains_how_to_fix(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    # The environment variable is read at import time; set the constant too so no request is made.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as caught:
        OpenClipBackbone.from_config(OpenClipConfig(arch="ViT-B-32", pretrained="openai", cache_dir=str(tmp_path)))
    message = str(caught.value)
    assert "'ViT-B-32' pretrained='openai'" in message
    assert "backbone.pretrained=/path/to/checkpoint" in message
    assert "HF_HUB_CACHE" in message


def test_unreachable_hub_fails_at_once_instead_of_retrying(tmp_path, unreachable_hub) -> None:
    import time

    started = time.perf_counter()
    with pytest.raises(UserError) as caught:
        OpenClipBackbone.from_config(OpenClipConfig(arch="ViT-B-32", pretrained="openai", cache_dir=str(tmp_path)))
    # Without the probe huggingface_hub retries for about a minute; offline mode answers at once.
    assert time.perf_counter() - started < 20
    expected = f"the Hugging Face Hub cannot be reached ({unreachable_hub.ENDPOINT}) and the files are not cached"
    assert expected in str(caught.value)
    assert unreachable_hub.HF_HUB_OFFLINE is False  # restored for later downloads


def test_unknown_arch_and_tag_suggest_names() -> None:
    with pytest.raises(UserError, match="unknown arch 'ViT-B-61' \\(did you mean .*'ViT-B-16'"):
        OpenClipBackbone.from_config(OpenClipConfig(arch="ViT-B-61", pretrained=None))
    with pytest.raises(UserError, match="neither a pretrained tag of RN50 \\(did you mean 'openai'\\?\\)"):
        OpenClipBackbone.from_config(OpenClipConfig(arch="RN50", pretrained="opanai"))
    with pytest.raises(UserError, match="nor an existing checkpoint file"):
        OpenClipBackbone.from_config(OpenClipConfig(arch="RN50", pretrained="/no/such/checkpoint.pt"))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="backbone.arch"):
        OpenClipConfig(arch="")
    with pytest.raises(ValueError, match="backbone.pretrained is empty"):
        OpenClipConfig(pretrained="")


def test_contract_example_in_the_docs_runs(capsys: pytest.CaptureFixture[str]) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "backbones.md").read_text(encoding="utf-8")
    (example,) = [block for block in re.findall(r"```python\n(.*?)```", docs, re.DOTALL) if "patch_offsets" in block]
    exec(compile(example, "docs/backbones.md", "exec"), {})
    assert len(eval(capsys.readouterr().out)) == 5  # the five best-ranked words


def test_plugin_registers_both_backbones_and_imports_cheaply() -> None:
    registered = {}
    register_backbones(register=lambda name, factory, config, summary: registered.update({name: config}))
    assert set(registered) == {"openclip", "timm"}
    code = (
        "import sys, mmadapt.builtin.plugin; "
        "heavy = {'torch', 'open_clip', 'timm'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
