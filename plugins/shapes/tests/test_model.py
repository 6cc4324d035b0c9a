"""shapes-clip model, pretraining loop and evaluation (tiny runs)."""

import json
import math
from importlib.util import find_spec

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from mmadapt_shapes import model as shapes_model  # noqa: E402
from mmadapt_shapes.evaluate import evaluate  # noqa: E402
from mmadapt_shapes.pairs import pretrain_batch  # noqa: E402
from mmadapt_shapes.pretrain import PretrainSettings, lr_at, pretrain  # noqa: E402


@pytest.fixture(scope="module")
def net():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return shapes_model.create_model(weights=None).eval()


def test_config_is_small_clip(net):
    import open_clip

    assert shapes_model.MODEL_NAME in open_clip.list_models()
    assert net.visual.image_size == (64, 64)
    assert net.context_length == 77 and net.vocab_size == 49408
    assert shapes_model.count_parameters(net) < 10_000_000


def test_shipped_weights_are_small_if_present():
    path = shapes_model.DEFAULT_WEIGHTS
    if not path.is_file():
        pytest.skip("no shipped weights")
    assert path.stat().st_size <= 30 * 2**20
    shapes_model.create_model("default")


def test_trimmed_text_encoding_is_exact(net):
    _, texts, _ = pretrain_batch(0, 16, 0)
    tokens = shapes_model.get_tokenizer()(texts)
    with torch.no_grad():
        full = net.encode_text(tokens)
        for buckets in (1, 4):
            assert torch.allclose(shapes_model.encode_text_trimmed(net, tokens, buckets=buckets), full, atol=1e-4)


def test_lr_schedule():
    s = PretrainSettings(steps=100, warmup=10, lr=1.0)
    assert lr_at(0, s) == pytest.approx(0.1)
    assert lr_at(9, s) == pytest.approx(1.0)
    assert lr_at(99, s) < 0.01
    assert all(lr_at(i, s) >= lr_at(i + 1, s) for i in range(10, 99))


def test_pretrain_writes_weights_and_resumes(tmp_path):
    kw = dict(steps=2, batch_size=4, warmup=1, threads=1, checkpoint_every=1, progress=False)
    weights = pretrain(tmp_path, **kw)
    assert weights.is_file() and (tmp_path / "checkpoint.pt").is_file()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2]  # log_every 10: only the last step is logged
    assert math.isfinite(records[0]["loss"]) and records[0]["lr/all"] > 0
    assert (tmp_path / "curves.png").is_file() == (find_spec("matplotlib") is not None)
    assert json.loads((tmp_path / "settings.json").read_text())["steps"] == 2
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 2
    loaded = shapes_model.create_model(weights)
    assert loaded.visual.conv1.weight.dtype == torch.float32
    pretrain(tmp_path, **kw)  # already complete: resumes at the end and rewrites the weights
    with pytest.raises(ValueError, match="lr"):
        pretrain(tmp_path, **{**kw, "steps": 2}, lr=0.5)


def test_evaluate_returns_all_metrics(net):
    results = evaluate(model=net, n=8, n_retrieval=16, verbose=False)
    assert set(results) == {"shape/top1", "shape-low-light/top1", "shape-negative/top1",
                            "shape-upside-down/top1", "lighting/top1",
                            "colour-shape/base/top1", "colour-shape/novel/top1", "retrieval/t2i_r1"}
    assert all(0.0 <= v <= 1.0 for v in results.values())
