"""`adapt export`, `mmadapt.load_adapter`, `adapt predict`: a finished run as a folder that reproduces it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mmadapt import UserError, load_adapter
from mmadapt.export import export_run, state_sha256
from mmadapt.testing import adapt_command, assert_export_reproduces_run, run_recipe, tiny_bundle, tiny_recipe

pytestmark = pytest.mark.usefixtures("tiny_plugin", "one_torch_thread")

TRAINED = {"protocol": {"name": "standard"}, "train": {"epochs": 2, "lr": 0.05, "optimizer": "adam"}}

#: Every builtin classification adapter, trained briefly on the tiny components (zero-shot only evaluates).
BUILTIN_RUNS = {
    "zeroshot": tiny_recipe(),
    "linear-probe": tiny_recipe(adapter={"name": "linear-probe"}, **TRAINED),
    "lora": tiny_recipe(adapter={"name": "lora", "tower": "both"}, **TRAINED),
    "finetune": tiny_recipe(adapter={"name": "finetune"}, **TRAINED),
}


@pytest.fixture
def lora_run(tmp_path):
    run_recipe(BUILTIN_RUNS["lora"], tmp_path)
    return tmp_path / "run"


@pytest.mark.parametrize("method", sorted(BUILTIN_RUNS))
def test_an_export_gives_the_runs_logits_on_its_test_split(method, tmp_path):
    run_recipe(BUILTIN_RUNS[method], tmp_path)
    loaded = assert_export_reproduces_run(tmp_path / "run", tmp_path / "export")
    assert loaded.classnames == tiny_bundle().task.classnames


def test_the_folder_holds_config_weights_and_model_card(lora_run, tmp_path):
    out = export_run(lora_run, tmp_path / "export")
    config = json.loads((out / "config.json").read_text())
    assert (config["format"], config["method"], config["seed"]) == ("mmadapt-adapter", "lora", 1)
    assert config["adapter"]["tower"] == "both" and config["backbone"]["section"]["name"] == "tiny-clip"
    assert config["task"]["classnames"] == tiny_bundle().task.classnames
    assert config["task"]["templates"] == ["a photo of a {} thing."]
    assert config["metrics"] == json.loads((lora_run / "summary.json").read_text())["metrics"]
    from safetensors.torch import load_file

    weights = load_file(str(out / "adapter.safetensors"))
    assert weights and all("lora_" in name for name in weights), "only the trainable tensors are exported"
    card = (out / "README.md").read_text()
    assert "Hu et al., LoRA" in card and "load_adapter" in card and "test/accuracy" in card


def test_a_seeds_run_exports_one_seed_and_reports_every_seed(tmp_path):
    run_recipe(BUILTIN_RUNS["linear-probe"], tmp_path, seeds=[1, 2])
    out = export_run(tmp_path / "run", tmp_path / "export", seed=2)
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 2 and config["seeds"]["seeds"] == [1, 2]
    assert "± " in (out / "README.md").read_text()
    with pytest.raises(UserError, match="--seed 3 is not one of them"):
        export_run(tmp_path / "run", tmp_path / "other", seed=3)


def test_a_linear_head_refuses_new_class_names_and_zero_shot_takes_them(tmp_path):
    run_recipe(BUILTIN_RUNS["linear-probe"], tmp_path / "probe")
    probe = load_adapter(export_run(tmp_path / "probe" / "run", tmp_path / "probe-export"))
    with pytest.raises(UserError, match="linear-probe adapter cannot take new class names"):
        probe.set_classnames(["cat", "dog"])
    run_recipe(BUILTIN_RUNS["zeroshot"], tmp_path / "zs")
    zeroshot = load_adapter(export_run(tmp_path / "zs" / "run", tmp_path / "zs-export"))
    zeroshot.set_classnames(["cat", "dog", "fish"])
    assert zeroshot.logits(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert set(zeroshot.classify(torch.zeros(2, 3, 32, 32))) <= {"cat", "dog", "fish"}


def test_another_base_model_is_refused(lora_run, tmp_path):
    out = export_run(lora_run, tmp_path / "export")
    config = json.loads((out / "config.json").read_text())
    config["backbone"]["section"]["seed"] = 5  # the tiny CLIP with other random weights
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="other weights"):
        load_adapter(out)


def test_the_weights_hash_is_of_names_shapes_and_values():
    state = {"a": torch.zeros(2), "b": torch.ones(3)}
    assert state_sha256(state) == state_sha256(dict(reversed(state.items())))
    assert state_sha256(state) != state_sha256({**state, "b": torch.full((3,), 2.0)})
    assert state_sha256(state) != state_sha256({"a": torch.zeros(2), "c": torch.ones(3)})


def test_merged_lora_weights_give_the_runs_logits_in_plain_open_clip(lora_run, tmp_path):
    import open_clip
    from mmadapt.testing import make_batch

    out = export_run(lora_run, tmp_path / "export", merge=True)
    loaded = load_adapter(out)
    batch = make_batch(tiny_bundle().split("test"), loaded.adapter.backbone, size=32)
    expected = loaded.logits(batch["image"])

    plain = open_clip.create_model(f"local-dir:{out / 'merged'}").eval()  # no mmadapt code in this model
    assert not any("lora" in name for name, _ in plain.named_parameters())
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # CLIP's BPE tokenizer, context 77, as the tiny CLIP's
    prompts = [f"a photo of a {name} thing." for name in loaded.classnames]
    with torch.no_grad():
        classes = plain.encode_text(tokenizer(prompts), normalize=True)
        features = plain.encode_image(batch["image"], normalize=True)
        logits = plain.logit_scale.exp() * features @ classes.t()
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    untrained = load_adapter(out)
    untrained.adapter.load_trainable_state_dict(
        {name: torch.zeros_like(t) for name, t in untrained.adapter.trainable_state_dict().items()})
    assert not torch.allclose(untrained.logits(batch["image"]), expected, atol=1e-4), "the LoRA run changed nothing"


def test_a_method_without_a_merged_form_refuses_merge(tmp_path):
    run_recipe(BUILTIN_RUNS["linear-probe"], tmp_path)
    with pytest.raises(UserError, match="no merged form"):
        export_run(tmp_path / "run", tmp_path / "export", merge=True)


def test_predict_prints_the_top_classes(lora_run, tmp_path, capsys):
    from PIL import Image

    export_run(lora_run, tmp_path / "export")
    pictures = [tiny_bundle().split("test").load(i)["image"] for i in range(2)]
    paths = []
    for index, picture in enumerate(pictures):
        paths.append(tmp_path / f"image{index}.png")
        picture.save(paths[-1])
    assert adapt_command(["predict", str(tmp_path / "export"), *map(str, paths), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = load_adapter(tmp_path / "export").classify([Image.open(p) for p in paths])
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == expected
    assert all(line.count(",") == 1 for line in lines), lines


def test_export_cli_then_push_offline_fails_clearly(lora_run, tmp_path, capsys, unreachable_hub):
    code = adapt_command(["export", str(lora_run), "--out", str(tmp_path / "export"), "--push", "me/tiny-lora"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "cannot push to the Hugging Face Hub" in err and "cannot be reached" in err
    assert (tmp_path / "export" / "config.json").is_file(), "the export is written before the push"


def test_loading_from_the_hub_offline_fails_clearly(unreachable_hub):
    with pytest.raises(UserError, match="cannot get the exported adapter 'me/missing'"):
        load_adapter("hf-hub:me/missing")


def test_a_folder_that_is_not_an_export_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a folder written by `adapt export`"):
        load_adapter(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        load_adapter(tmp_path / "absent")


def test_push_uploads_the_folder_to_the_named_repository(lora_run, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class RecordingApi:
        def create_repo(self, repo, exist_ok):
            calls.append(("create", repo, exist_ok))

        def upload_folder(self, folder_path, repo_id, commit_message):
            calls.append(("upload", sorted(p.name for p in Path(folder_path).iterdir()), repo_id))
            return type("Commit", (), {"repo_url": f"https://hub.example/{repo_id}"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("mmadapt.export.hub_reachable", lambda endpoint: True)
    assert adapt_command(["export", str(lora_run), "--out", str(tmp_path / "export"), "--push", "me/tiny-lora"]) == 0
    assert calls == [("create", "me/tiny-lora", True),
                     ("upload", ["README.md", "adapter.safetensors", "config.json"], "me/tiny-lora")]


def test_a_hub_repository_loads_like_its_folder(lora_run, tmp_path, monkeypatch):
    import huggingface_hub

    out = export_run(lora_run, tmp_path / "export")
    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: asked.append(repo_id) or str(out))
    images = torch.zeros(2, 3, 32, 32)
    torch.testing.assert_close(load_adapter("hf-hub:me/tiny-lora").logits(images), load_adapter(out).logits(images),
                               atol=0, rtol=0)
    assert asked == ["me/tiny-lora"]


def test_a_pretrained_base_offline_and_uncached_fails_clearly(lora_run, tmp_path, unreachable_hub):
    out = export_run(lora_run, tmp_path / "export")
    config = json.loads((out / "config.json").read_text())
    config["backbone"]["section"] = {"name": "openclip", "arch": "ViT-B-32", "pretrained": "openai",
                                     "cache_dir": str(tmp_path / "empty-cache")}
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="cannot get the weights of 'ViT-B-32' pretrained='openai'"):
        load_adapter(out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_loaded_adapter_moves_to_the_gpu_with_its_inputs(lora_run, tmp_path):
    out = export_run(lora_run, tmp_path / "export")
    pictures = [tiny_bundle().split("test").load(i)["image"] for i in range(4)]
    on_gpu = load_adapter(out, device="cuda")
    logits = on_gpu.logits(pictures)
    assert logits.device.type == "cuda"
    torch.testing.assert_close(logits.cpu(), load_adapter(out).logits(pictures), atol=1e-4, rtol=1e-4)
