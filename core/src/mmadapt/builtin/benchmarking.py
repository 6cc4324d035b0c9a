"""Set-up shared by ``adapt bench`` benchmarks: a pretrained architecture with random weights, offline."""

from __future__ import annotations

import torch

from .openclip import OpenClipBackbone


def random_openclip_backbone(arch: str, threads: int | None = None) -> OpenClipBackbone:
    """An open_clip ``arch`` with random weights (no download), built after ``torch.manual_seed(0)``.

    ``threads`` sets torch's intra-op threads first when given, so a benchmark's ``--threads`` option
    also covers model construction. Timings depend on the architecture's shapes, not its weights,
    which is why benchmarks run offline on random weights.
    """
    import open_clip

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"building {arch} with random weights ...", flush=True)
    return OpenClipBackbone(open_clip.create_model(arch, pretrained=None), name=f"openclip {arch} (random weights)")
