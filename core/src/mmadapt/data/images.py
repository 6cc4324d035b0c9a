"""Decoding image files to RGB, and what an unreadable one raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UserError

#: Appended to every unreadable-image message, so the user learns both ways out.
BAD_IMAGE_FIX = "fix or remove the file, or set data.on_bad_image=skip to skip unreadable images and count them"


class BadImageError(UserError):
    """An image that is missing or cannot be decoded. ``Split.__getitem__`` skips it in skip mode.

    The constructor takes only the message, so the exception survives the round trip out of a
    DataLoader worker process (PyTorch rebuilds it as ``type(exc)(message)``).
    """


_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def open_image(path: str | Path) -> Image.Image:
    """Decode an image file to 8-bit RGB; a missing or corrupt file raises :class:`BadImageError`.

    The whole file is decoded here, so a truncated JPEG fails now rather than inside a transform.
    """
    try:
        with Image.open(path) as image:
            image.load()
            # A decoded RGB image is kept as it is: converting it would only copy its pixels.
            return image if image.mode == "RGB" and "transparency" not in image.info else to_rgb(image)
    except FileNotFoundError:
        raise BadImageError(f"{path}: image file not found; {BAD_IMAGE_FIX}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports corrupt data with all of these, depending on the format plugin.
        raise BadImageError(f"{path}: cannot decode image ({exc}); {BAD_IMAGE_FIX}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    - 16-bit grey (``I;16*``, and ``I``, the mode older Pillows give 16-bit PNGs) is scaled by
      255/65535 and rounded, not clipped: 65535 -> 255, 32768 -> 128.
    - Transparency (an alpha band, or a palette/colour-key ``transparency`` entry) is composited over
      white: transparent pixels often hold arbitrary colours, and white is what a viewer shows.
    - Everything else (grey, palette, CMYK, YCbCr, 1-bit) goes through Pillow's own conversion.
    """
    if image.mode.startswith("I"):
        grey = np.asarray(image).astype(np.float64) * (255.0 / 65535.0)
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), mode="L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """Default transform: a float (3, H, W) tensor in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
