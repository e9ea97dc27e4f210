"""Image files of every mode a PNG or JPEG decodes to are scaled to [0, 1] by their own range; damaged, cut-off
and oversized files are named when a folder is loaded, before a run writes anything."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vaelens.data import load_dataset
from vaelens.data.image_files import check_image_file, decode_image

GRADIENT = np.linspace(0, 1, 16 * 16).reshape(16, 16)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_rgb48_png(path, pixels: np.ndarray) -> None:
    """A 16-bit-per-sample RGB PNG, written by hand (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
                     + _png_chunk(b"IEND", b""))


def test_a_16_bit_grey_png_keeps_its_range(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.round(GRADIENT * 65535).astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    decoded = decode_image(path, 16, grayscale=True)
    assert decoded.dtype == np.float32 and decoded.shape == (1, 16, 16)
    np.testing.assert_allclose(decoded[0], GRADIENT, atol=1e-4)  # read as 8-bit, 98% of it would be 1.0
    rgb = decode_image(path, 16, grayscale=False)
    assert rgb.shape == (3, 16, 16) and np.array_equal(rgb[0], rgb[2])


def test_a_16_bit_rgb_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "rgb48.png"
    pixels = np.stack([GRADIENT, 1 - GRADIENT, np.full_like(GRADIENT, 0.5)], axis=2)
    _write_rgb48_png(path, np.round(pixels * 65535))
    decoded = decode_image(path, 16, grayscale=False)
    np.testing.assert_allclose(decoded.transpose(1, 2, 0), pixels, atol=1 / 255 + 1e-6)  # 8-bit precision


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "1"])
def test_8_bit_modes_are_scaled_by_255(tmp_path, mode):
    rgb = np.stack([GRADIENT] * 3, axis=2)
    path = tmp_path / f"{mode}.png"
    Image.fromarray(np.round(rgb * 255).astype(np.uint8)).convert(mode).save(path)
    decoded = decode_image(path, 16, grayscale=True)
    assert decoded.min() >= 0 and decoded.max() <= 1
    expected = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    np.testing.assert_array_equal(decoded[0], expected)
    if mode in ("L", "RGB", "RGBA", "LA"):
        np.testing.assert_allclose(decoded[0], GRADIENT, atol=1 / 255)


def test_a_palette_with_transparency_is_looked_up(tmp_path):
    path = tmp_path / "palette.png"
    image = Image.fromarray(np.full((8, 8, 3), (200, 10, 10), dtype=np.uint8)).convert("P")
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    decoded = decode_image(path, 8, grayscale=False)
    opened = Image.open(path)
    palette_colour = np.array(opened.getpalette()[3 * opened.getpixel((0, 0)):][:3])  # the web palette's nearest
    np.testing.assert_allclose(decoded[:, 0, 0], palette_colour / 255, atol=1e-6)
    np.testing.assert_allclose(palette_colour, (200, 10, 10), atol=26)


def test_a_float_image_is_refused_in_one_line(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(GRADIENT.astype(np.float32), mode="F").save(path)
    with pytest.raises(ValueError, match="float.tif has Pillow mode F.*cannot scale"):
        decode_image(path, 16, grayscale=True)


def test_a_cut_off_png_is_named_when_the_folder_loads(tmp_path, data_config):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(4):
        Image.fromarray((np.random.default_rng(index).random((16, 16, 3)) * 255).astype(np.uint8)).save(
            folder / f"{index}.png")
    whole = (folder / "3.png").read_bytes()
    (folder / "3.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="3.png"):
        check_image_file(folder / "3.png")
    with pytest.raises(ValueError, match=r"cannot read image file .*3\.png"):
        load_dataset(data_config(name="folder", path=str(folder), image_size=8, test_fraction=0.0))


def test_a_decompression_bomb_is_refused_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (400, 300)).save(path)  # 120,000 pixels: a bomb once the limit is below half of that
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(ValueError, match="bomb.png is too large to decode safely"):
        check_image_file(path)
    with pytest.raises(ValueError, match="bomb.png is too large"):
        decode_image(path, 16, grayscale=True)
