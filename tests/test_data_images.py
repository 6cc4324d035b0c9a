"""Image decoding: every mode becomes 8-bit RGB; missing and truncated files name the file and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from mmadapt.data import BadImageError, open_image
from mmadapt.errors import UserError
from PIL import Image


def _pixels(path):
    image = open_image(path)
    assert image.mode == "RGB"
    return np.asarray(image)


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_rgb_files_decode_to_the_pixels_of_pillows_rgb_conversion(tmp_path, suffix):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / f"rgb.{suffix}")
    with Image.open(tmp_path / f"rgb.{suffix}") as reference:
        expected = np.asarray(reference.convert("RGB"))
    image = open_image(tmp_path / f"rgb.{suffix}")
    assert np.array_equal(_pixels(tmp_path / f"rgb.{suffix}"), expected)
    assert np.array_equal(np.asarray(image.resize((10, 7))), np.asarray(Image.fromarray(expected).resize((10, 7))))


def test_grayscale_becomes_three_equal_channels(tmp_path):
    Image.new("L", (3, 2), 77).save(tmp_path / "grey.png")
    assert (_pixels(tmp_path / "grey.png") == 77).all()


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 257, 32768, 65535]], dtype=np.uint16)).save(tmp_path / "deep.png")
    assert _pixels(tmp_path / "deep.png")[0, :, 0].tolist() == [0, 1, 128, 255]


def test_rgba_is_composited_over_white(tmp_path):
    image = Image.new("RGBA", (3, 1))
    image.putdata([(255, 0, 0, 0), (255, 0, 0, 255), (0, 0, 255, 128)])
    image.save(tmp_path / "alpha.png")
    pixels = _pixels(tmp_path / "alpha.png")[0]
    assert pixels[0].tolist() == [255, 255, 255]  # fully transparent: white, not the hidden red
    assert pixels[1].tolist() == [255, 0, 0]
    assert pixels[2].tolist() == pytest.approx([127, 127, 255], abs=1)


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putdata([0, 1])
    image.info["transparency"] = 0
    image.save(tmp_path / "palette.png", transparency=0)
    assert _pixels(tmp_path / "palette.png")[0].tolist() == [[255, 255, 255], [10, 20, 30]]


def test_truncated_jpeg_names_file_and_fix(tmp_path):
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError) as info:
        open_image(tmp_path / "cut.jpg")
    assert "cut.jpg" in str(info.value) and "data.on_bad_image=skip" in str(info.value)
    assert isinstance(info.value, UserError)


def test_missing_file_names_file_and_fix(tmp_path):
    with pytest.raises(BadImageError, match=r"nope\.jpg: image file not found.*data\.on_bad_image=skip"):
        open_image(tmp_path / "nope.jpg")


def test_not_an_image(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(BadImageError, match=r"text\.png: cannot decode image"):
        open_image(tmp_path / "text.png")
