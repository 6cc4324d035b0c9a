"""Zero-shot evaluation of a ``shapes-clip`` model on held-out ShapesWorld images.

Reports top-1 accuracy for the ``shape``, ``shape-low-light``, ``shape-negative``,
``shape-upside-down`` and ``lighting`` tasks, for ``colour-shape`` base and novel classes (each
classified among its own half, as in base-to-novel protocols), and text-to-image retrieval recall@1
over 1,000 held-out (image, caption) pairs.

    adapt shapes evaluate --weights path/to/weights.safetensors
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .model import create_model, encode_text_trimmed, get_tokenizer, images_to_tensor
from .pairs import RETRIEVAL_STREAM, pair_batch
from .tasks import Task, get_task


def _encode_images(model: Any, images: np.ndarray, batch: int = 250) -> Any:
    import torch

    feats = [model.encode_image(images_to_tensor(images[i : i + batch], model), normalize=True)
             for i in range(0, len(images), batch)]
    return torch.cat(feats)


def _encode_texts(model: Any, tokenizer: Any, texts: Sequence[str], batch: int = 500) -> Any:
    import torch

    feats = [encode_text_trimmed(model, tokenizer(list(texts[i : i + batch])), normalize=True, buckets=4)
             for i in range(0, len(texts), batch)]
    return torch.cat(feats)


def zeroshot_classifier(model: Any, tokenizer: Any, classnames: Sequence[str],
                        templates: Sequence[str]) -> Any:
    """Class embeddings (C x D): the normalised mean of each class's template embeddings."""
    import torch.nn.functional as F

    texts = [t.format(c) for c in classnames for t in templates]
    feats = _encode_texts(model, tokenizer, texts).view(len(classnames), len(templates), -1)
    return F.normalize(feats.mean(dim=1), dim=-1)


def zeroshot_accuracy(model: Any, tokenizer: Any, task: Task, n: int, seed: int = 0,
                      classes: Sequence[str] | None = None, split: str = "test") -> float:
    """Top-1 accuracy on ``n`` items of ``task``, choosing among ``classes`` (default: all)."""
    names = list(classes) if classes is not None else list(task.classnames)
    idx = task.class_indices(names)
    items = [task.item(i, split, seed, classes=idx) for i in range(n)]
    images = np.stack([it.image for it in items])
    labels = np.array([idx.index(it.label) for it in items])
    weights = zeroshot_classifier(model, tokenizer, names, task.templates)
    pred = (_encode_images(model, images) @ weights.T).argmax(dim=1).numpy()
    return float((pred == labels).mean())


def retrieval_recall_at_1(model: Any, tokenizer: Any, n: int = 1000, seed: int = 0) -> float:
    """Text-to-image recall@1 over ``n`` held-out pairs (each caption ranks all ``n`` images)."""
    images, texts = pair_batch(seed, RETRIEVAL_STREAM, 0, n)
    sims = _encode_texts(model, tokenizer, texts) @ _encode_images(model, images).T
    return float((sims.argmax(dim=1).numpy() == np.arange(n)).mean())


def evaluate(weights: str | Path | None = "default", n: int = 500, n_retrieval: int = 1000,
             seed: int = 0, threads: int | None = 1, model: Any = None, verbose: bool = True) -> dict[str, float]:
    """Evaluate ``weights`` (or an already built ``model``) and return ``{metric: value}``."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if model is None:
        model = create_model(weights)
    model.eval()
    tokenizer = get_tokenizer()
    cs = get_task("colour-shape")
    results: dict[str, float] = {}
    with torch.no_grad():
        results["shape/top1"] = zeroshot_accuracy(model, tokenizer, get_task("shape"), n, seed)
        results["shape-low-light/top1"] = zeroshot_accuracy(model, tokenizer, get_task("shape-low-light"), n, seed)
        results["shape-negative/top1"] = zeroshot_accuracy(model, tokenizer, get_task("shape-negative"), n, seed)
        results["shape-upside-down/top1"] = zeroshot_accuracy(model, tokenizer, get_task("shape-upside-down"), n,
                                                              seed)
        results["lighting/top1"] = zeroshot_accuracy(model, tokenizer, get_task("lighting"), n, seed)
        results["colour-shape/base/top1"] = zeroshot_accuracy(model, tokenizer, cs, n, seed, cs.base_classes)
        results["colour-shape/novel/top1"] = zeroshot_accuracy(model, tokenizer, cs, n, seed, cs.novel_classes)
        results["retrieval/t2i_r1"] = retrieval_recall_at_1(model, tokenizer, n_retrieval, seed)
    if verbose:
        print(format_table(results))
    return results


def format_table(results: dict[str, float]) -> str:
    """Render results as a two-column plain-text table."""
    width = max(len(k) for k in results)
    lines = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  ------"]
    lines += [f"{k.ljust(width)}  {100 * v:5.1f}%" for k, v in results.items()]
    return "\n".join(lines)
