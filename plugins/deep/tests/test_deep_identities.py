"""The deep-prompt sheet's identities: no tokens is CLIP, IVLP with a layer-0 text prompt only is CoOp, MaPLe's
coupling, and the parameter counts of the papers on ViT-B/16."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt import OpenClipBackbone, PromptLearner, Task, UserError, new_context
from mmadapt.testing_models import tiny_openclip_backbone
from mmadapt_deep.config import IvlpConfig, MapleConfig
from mmadapt_deep.ivlp import Ivlp
from mmadapt_deep.maple import Maple

CLASSNAMES = ["dog", "golden retriever", "sweet_pepper", "jack-o'-lantern"]


def random_openclip(arch: str):
    """An open_clip model with random weights (seeded) and our backbone around it."""
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(arch, pretrained=None)
    return model, OpenClipBackbone(model, name=f"openclip {arch}")


@pytest.fixture(scope="module")
def vit_b32():
    return random_openclip("ViT-B-32")


@pytest.fixture(scope="module")
def vit_b16():
    return random_openclip("ViT-B-16")[1]


def pixels_for(backbone, count: int = 2) -> torch.Tensor:
    size = backbone.preprocessing.size
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(3))


NO_TOKENS = {
    "ivlp depth 0": lambda b, t: Ivlp(IvlpConfig(depth=0), b, t),
    "ivlp no tokens": lambda b, t: Ivlp(IvlpConfig(n_text=0, n_visual=0, depth=2), b, t),
    "maple depth 0": lambda b, t: Maple(MapleConfig(depth=0), b, t),
}


@pytest.mark.parametrize("build", list(NO_TOKENS), ids=list(NO_TOKENS))
def test_without_tokens_the_features_are_open_clips_own(build, vit_b32):
    """open_clip's encode_text of "a photo of a {name}." and encode_image, at 1e-6."""
    import open_clip

    model, backbone = vit_b32
    adapter = NO_TOKENS[build](backbone, Task(CLASSNAMES)).eval()
    assert adapter.parameter_counts()["trainable"] == 0
    pixels = pixels_for(backbone)
    ids = open_clip.get_tokenizer("ViT-B-32")([f"a photo of a {name.replace('_', ' ')}." for name in CLASSNAMES])
    with torch.no_grad():
        torch.testing.assert_close(adapter.text_features(), F.normalize(model.encode_text(ids), dim=-1),
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(adapter.encode_images(pixels), F.normalize(model.encode_image(pixels), dim=-1),
                                   atol=1e-6, rtol=0)


def test_without_tokens_the_tiny_clip_is_its_own_forward():
    backbone = tiny_openclip_backbone("vit")
    adapter = Ivlp(IvlpConfig(depth=0, init=None), backbone, Task(CLASSNAMES)).eval()
    ids = backbone.text.tokenize([f"{name.replace('_', ' ')}." for name in CLASSNAMES])
    pixels = pixels_for(backbone)
    with torch.no_grad():
        torch.testing.assert_close(adapter.text_features(), backbone.encode_text(ids, normalize=True),
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(adapter.encode_images(pixels), backbone.encode_image(pixels, normalize=True),
                                   atol=1e-6, rtol=0)


@pytest.mark.parametrize("init", ["a photo of a", None])
def test_ivlp_with_a_first_layer_text_prompt_only_is_coop(init):
    """Logits and the context's gradient of IVLP (n_v = 0, J = 1) equal CoOp's PromptLearner with the same context."""
    backbone = tiny_openclip_backbone("vit")
    adapter = Ivlp(IvlpConfig(n_text=4, n_visual=0, depth=1, init=init), backbone, Task(CLASSNAMES)).train()
    coop = PromptLearner(backbone, CLASSNAMES, new_context(backbone, 4, init))
    with torch.no_grad():
        coop.ctx.copy_(adapter.prompt.ctx)
    pixels = pixels_for(backbone, 3)
    labels = torch.tensor([0, 2, 3])
    ours = F.cross_entropy(adapter({"image": pixels, "label": labels})["logits"], labels)
    image = backbone.encode_image(pixels, normalize=True)
    theirs = F.cross_entropy(backbone.logit_scale * image @ coop.encode_context(backbone, coop.ctx).t(), labels)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(adapter.prompt.ctx.grad, coop.ctx.grad, atol=1e-6, rtol=0)
    assert list(adapter.parameter_groups()) == ["text"]


def captured_insert(monkeypatch, tower) -> list[dict]:
    calls = []
    original = type(tower).run

    def run(self, tokens, **options):
        calls.append(options.get("insert"))
        return original(self, tokens, **options)

    monkeypatch.setattr(type(tower), "run", run)
    return calls


def test_maples_image_tokens_are_the_coupling_of_the_text_tokens(monkeypatch):
    backbone = tiny_openclip_backbone("vit")
    adapter = Maple(MapleConfig(depth=2), backbone, Task(CLASSNAMES)).train()
    calls = captured_insert(monkeypatch, backbone.image)
    features = adapter.encode_images(pixels_for(backbone))
    (inserted,) = calls
    text = adapter.text_prompts()
    assert sorted(inserted) == [0, 1] and len(text) == 2
    for k, tokens in inserted.items():
        assert tokens.shape == (1, 2, backbone.image.width)
        torch.testing.assert_close(tokens[0], adapter.coupling[k](text[k]), atol=0, rtol=0)
    # A loss on image features only: its gradient reaches every layer's text tokens through F_k.
    features.sum().backward()
    for name, param in (("ctx", adapter.prompt.ctx), ("deep text", adapter.text_deep[0])):
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient reached the {name} through F_k"
    for couple in adapter.coupling:
        assert couple.weight.grad.abs().sum() > 0


def test_ivlp_tokens_go_where_the_papers_put_them(monkeypatch):
    backbone = tiny_openclip_backbone("vit")
    adapter = Ivlp(IvlpConfig(n_text=2, n_visual=3, depth=2), backbone, Task(CLASSNAMES)).train()
    calls = captured_insert(monkeypatch, backbone.image)
    adapter.encode_images(pixels_for(backbone))
    (inserted,) = calls
    assert {k: tuple(v.shape) for k, v in inserted.items()} == {k: (1, 3, backbone.image.width) for k in (0, 1)}
    for k, tokens in inserted.items():
        assert tokens[0] is not None and torch.equal(tokens[0], adapter.visual[k])
    assert adapter.prompt.n_ctx == 2 and adapter.words == "of a"
    # A deeper layer's text tokens are in the pass: new ones change the text features (the tiny CLIP's random
    # residual stream is large, so the tokens are large too, to move it beyond rounding).
    before = adapter.text_features().detach()
    with torch.no_grad():
        adapter.text_deep[0].copy_(10 * torch.randn(2, backbone.text.width, generator=torch.Generator().manual_seed(4)))
    assert (adapter.text_features().detach() - before).abs().max() > 1e-4


def test_parameter_counts_on_vit_b16(vit_b16):
    task = Task(CLASSNAMES)
    # MaPLe, n = 2, J = 9: 1,024 + 393,984 + 8 x (1,024 + 393,984), the paper's 3.55 M.
    assert Maple(MapleConfig(n_ctx=2, depth=9), vit_b16, task).parameter_counts()["trainable"] == 3_555_072
    # IVLP: J x (n_t x 512 + n_v x 768); PromptSRC's n_t = n_v = 4, J = 9 is its paper's 46 K.
    assert Ivlp(IvlpConfig(n_text=2, n_visual=2, depth=9), vit_b16, task).parameter_counts()["trainable"] == 23_040
    assert Ivlp(IvlpConfig(n_text=4, n_visual=4, depth=9), vit_b16, task).parameter_counts()["trainable"] == 46_080
    assert Ivlp(IvlpConfig(n_text=4, n_visual=0, depth=1), vit_b16, task).parameter_counts()["trainable"] == 2_048


def test_bad_options_fail_naming_the_key_and_the_fix():
    backbone = tiny_openclip_backbone("vit")
    task = Task(CLASSNAMES)
    with pytest.raises(UserError, match=r"adapter.depth=3 .* 2 blocks .* at most 2"):
        Maple(MapleConfig(depth=3), backbone, task)
    with pytest.raises(UserError, match=r"adapter.init='a photo of a' is 4 tokens.*set adapter.init to null"):
        Ivlp(IvlpConfig(n_text=5, depth=2), backbone, task)
    with pytest.raises(ValueError, match="adapter.depth"):
        IvlpConfig(depth=-1)
    with pytest.raises(ValueError, match="adapter.n_ctx"):
        MapleConfig(n_ctx=0)
