"""Real photos made backlit: scikit-image's bundled CC0 / public-domain photos, degraded, then enhanced.

Both degradations (:data:`DEGRADATIONS`) imitate a subject in front of a bright background: a soft
centred ellipse marks the subject, which is darkened (``0.55 x^2``: gamma 2, then x 0.55). ``clipped``
brightens the background and clips it (``min(1, 1.5 x + 0.2)``: a bright window), so brightening it
further cannot lose anything; ``unclipped`` brightens it a little and keeps its detail (``0.2 + 0.8 x``,
a veil of flare), so an enhancer that brightens everything pushes it past the original.
``adapt lit photos RUN_DIR --out DIR`` enhances the degraded photos with trained runs and scores
inputs and outputs against the originals with scikit-image's PSNR and SSIM (Gaussian window, sigma
1.5, the reference SSIM settings), the under-exposed share (Y < 0.1) and the blown-out share (pixels
pushed to white that are not white in the original, :func:`exposure.blown_out`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The photos used (scikit-image's docstrings: astronaut and rocket public domain, chelsea and coffee CC0).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
#: The subject ellipse's half-axes as fractions of the image's half-sides, and its edge's blur (pixels per side).
SUBJECT_AXES = 0.6
EDGE_SOFTNESS = 0.08
#: How each degradation brightens the background: clipped to white, or a little and unclipped.
DEGRADATIONS = {
    "clipped": lambda image: np.minimum(1.0, 1.5 * image + 0.2),
    "unclipped": lambda image: 0.2 + 0.8 * image,
}


def subject_mask(height: int, width: int) -> np.ndarray:
    """A soft centred ellipse (H, W) in [0, 1]: 1 on the subject, 0 on the background."""
    y = (np.arange(height) + 0.5 - height / 2) / (height / 2)
    x = (np.arange(width) + 0.5 - width / 2) / (width / 2)
    radius = np.sqrt((y[:, None] / SUBJECT_AXES) ** 2 + (x[None, :] / SUBJECT_AXES) ** 2)
    return np.clip((1.0 + EDGE_SOFTNESS - radius) / (2 * EDGE_SOFTNESS), 0.0, 1.0)


def make_backlit(image: np.ndarray, degradation: str = "clipped") -> np.ndarray:
    """The backlit version of an RGB float image (H, W, 3) in [0, 1]: dark subject, bright background.

    ``degradation`` (one of :data:`DEGRADATIONS`) says how the background is brightened.
    """
    mask = subject_mask(*image.shape[:2])[..., None]
    subject = 0.55 * image**2
    background = DEGRADATIONS[degradation](image)
    return mask * subject + (1.0 - mask) * background



def load_photo(name: str) -> np.ndarray:
    """One of :data:`PHOTOS` as RGB float (H, W, 3) in [0, 1]."""
    from skimage import data, img_as_float

    return img_as_float(getattr(data, name)())[..., :3]


def scores(image: np.ndarray, original: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM against the original (scikit-image), the under-exposed and the blown-out shares."""
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from .exposure import blown_out

    luma = image @ np.array([0.299, 0.587, 0.114])
    return {
        "psnr": float(peak_signal_noise_ratio(original, image, data_range=1.0)),
        "ssim": float(
            structural_similarity(
                original,
                image,
                channel_axis=-1,
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
        ),
        "under_exposed": float((luma < 0.1).mean()),
        "blown_out": blown_out(
            *(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1) for x in (image, original))),
    }


def run(run_dirs: list[Path], out: Path) -> list[dict]:
    """Degrade each photo, enhance it with each run, write PNGs and ``photos.json`` into ``out``; the table rows."""
    import json

    import torch

    from .enhancer import load_enhancer
    from .images import draw_grid, save_png

    adapters = [load_enhancer(path) for path in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    rows, grid = [], []
    for name in PHOTOS:
        original = load_photo(name)
        for degradation in DEGRADATIONS:
            degraded = make_backlit(original, degradation)
            tensor = torch.from_numpy(degraded).permute(2, 0, 1).float()
            stem = f"{name}-{degradation}"
            row = {"photo": name, "degradation": degradation, "size": f"{original.shape[1]}x{original.shape[0]}",
                   "input": scores(degraded, original)}
            pictures = [torch.from_numpy(original).permute(2, 0, 1).float(), tensor]
            for index, adapter in enumerate(adapters):
                with torch.no_grad():
                    enhanced = adapter.enhance(tensor[None])[0]
                row[f"run{index}"] = scores(enhanced.double().permute(1, 2, 0).numpy(), original)
                pictures.append(enhanced)
                save_png(enhanced, out / f"{stem}-run{index}.png")
            save_png(tensor, out / f"{stem}.png")
            rows.append(row)
            grid.append(pictures)
    draw_grid(grid, out / "photos.png")
    (out / "photos.json").write_text(json.dumps({"runs": [str(p) for p in run_dirs], "rows": rows}, indent=1))
    return rows
