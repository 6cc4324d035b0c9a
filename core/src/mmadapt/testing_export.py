"""The export round trip for tests: a finished run, exported and loaded, gives the run's own outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def assert_export_reproduces_run(run_dir: str | Path, export_dir: str | Path, *, split: str = "test",
                                 merge: bool = False) -> Any:
    """Export the finished run in ``run_dir`` to ``export_dir``, load it, and assert it reproduces the run.

    The run is rebuilt through the same assembly as ``adapt eval`` (its data, its newest checkpoint);
    every image of ``split`` goes through it as the evaluation prepares it and, as PIL images,
    through :func:`mmadapt.load_adapter` with the exported preprocessing: logits (classifiers) or
    images (enhancers) must be equal, and for single-label runs the accuracy on the split is the
    run's ``summary.json`` value. Returns the loaded adapter.
    """
    import json

    import torch

    from .assembly import assemble
    from .data import collate, split_transforms
    from .export import export_run
    from .exported import load_adapter
    from .rundir import RunDir
    from .runner import load_run

    run_dir = Path(run_dir)
    finished = load_run(run_dir)
    data = assemble(finished.recipe, saved_in=RunDir(run_dir)).bundle.split(split)
    adapter = finished.adapter
    task = adapter.task
    _, transform = split_transforms(task, finished.backbone.preprocessing)
    view = data.with_transform(transform)
    batch = collate([view[i] for i in range(len(view))])
    export_run(run_dir, export_dir, merge=merge)
    loaded = load_adapter(export_dir)
    pictures = [data.load(i)["image"] for i in range(len(data))]
    with torch.no_grad():
        outputs = adapter({"image": batch["image"]})
    if task.kind == "image-to-image":
        expected, got = outputs["images"], loaded.enhance(pictures)
        pairs = zip(expected, got) if isinstance(expected, list) else [(expected, got)]
        for want, have in pairs:
            assert torch.equal(want, have), "the exported enhancer's images differ from the run's"
        return loaded
    got = loaded.logits(pictures)
    assert torch.equal(outputs["logits"], got), (
        f"the exported adapter's logits differ from the run's: max |diff| {(outputs['logits'] - got).abs().max()}")
    summary = json.loads((run_dir / "summary.json").read_text())
    key = f"{split}/accuracy"
    if task.kind == "single-label" and key in summary["metrics"]:
        accuracy = 100.0 * float((got.argmax(-1) == batch["label"]).float().mean())
        assert abs(accuracy - summary["metrics"][key]) < 1e-6, (accuracy, summary["metrics"][key])
    return loaded

