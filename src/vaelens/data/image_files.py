"""Reading one image file, and checking a folder's files before a run writes anything.

Every Pillow mode a PNG or JPEG decodes to is scaled to [0, 1] by its own range: 8-bit modes (L, RGB, P,
LA, RGBA, 1, CMYK) through Pillow's conversion to L or RGB (alpha is dropped, a palette looked up), and
16-bit grey (I;16*, or I from older Pillow, 0..65535) by 65535 in float, so a 16-bit PNG keeps its range
(read as 8-bit it would be clipped: 98% of a 0..65535 gradient at 255). A mode vaelens cannot scale (float
images, 32-bit integers beyond 16 bits) is refused in one line. Pillow itself reads 16-bit RGB PNGs as 8-bit
RGB (the high byte of each sample): scaled correctly, 8-bit precision.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

DECODE_WORKERS = min(8, os.cpu_count() or 1)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow's 16-bit grey modes (I: what Pillow before 10 made of a 16-bit grey PNG)."""
READ_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)
TAIL_BYTES = 4096
"""How far from a file's end its end marker (PNG IEND, JPEG EOI) is looked for before decoding it to be sure."""


class UnscalableImage(ValueError):
    """An image file Pillow reads but whose samples vaelens cannot scale to [0, 1]; the message names the file."""


def _unreadable(path: Path, error: Exception) -> ValueError:
    if isinstance(error, Image.DecompressionBombError):
        return ValueError(f"image file {path} is too large to decode safely ({error}); resize it or remove it")
    return ValueError(f"cannot read image file {path}: {error}; remove or replace it")


def _sixteen_bit_grey(image: Image.Image, path: Path) -> Image.Image:
    """A 16-bit grey image as a float ("F") image in [0, 1]."""
    values = np.asarray(image, dtype=np.float64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise UnscalableImage(f"image file {path} holds {image.mode} values from {values.min():g} to {values.max():g}, "
                         "outside the 16-bit range vaelens scales (0..65535); convert it to 8- or 16-bit")
    return Image.fromarray((values / 65535.0).astype(np.float32), mode="F")


def _open_scaled(path: Path, grayscale: bool) -> Image.Image:
    """The file as an L/RGB image (8-bit sources) or an F image in [0, 1] (16-bit grey), EXIF rotation applied."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in SIXTEEN_BIT_MODES:
            return _sixteen_bit_grey(image, path)
        if image.mode == "F" or image.mode.startswith("I"):
            raise UnscalableImage(f"image file {path} has Pillow mode {image.mode} (float or 32-bit samples), which "
                             "vaelens cannot scale to [0, 1]; save it as an 8- or 16-bit PNG")
        if image.mode in ("P", "PA") and "transparency" in image.info:
            image = image.convert("RGBA")  # look the palette up with its transparency before dropping alpha
        return image.convert("L" if grayscale else "RGB")


def decode_image(path: Path, size: int, grayscale: bool, crop: int | None = None) -> np.ndarray:
    """One image file as float32 (C, size, size) in [0, 1]; a clear error names the file when it cannot be read.

    Centre-cropped to `crop` pixels (when given), resized so the shorter side is `size` (Lanczos) and
    centre-cropped to a square."""
    try:
        image = _open_scaled(Path(path), grayscale)
        if crop is not None:
            left, top = (image.width - crop) // 2, (image.height - crop) // 2
            image = image.crop((left, top, left + crop, top + crop))
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    except UnscalableImage:
        raise
    except READ_ERRORS as error:
        raise _unreadable(path, error) from error
    left, top = (width - size) // 2, (height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    if image.mode == "F":  # Lanczos overshoots a little at edges: clip as 8-bit storage does
        pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        pixels = pixels if grayscale else np.repeat(pixels[..., None], 3, axis=2)
    else:
        pixels = np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _ends_whole(path: Path) -> bool:
    """Whether the file's end marker lies near its end (PNG IEND chunk, JPEG end-of-image): a cut-off file
    lacks it. A file without it near the end is decoded before it is called damaged."""
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - TAIL_BYTES))
        tail = handle.read()
    return b"IEND" in tail if path.suffix.lower() == ".png" else b"\xff\xd9" in tail


def check_image_file(path: Path) -> None:
    """Open `path` (its header: format, size, the decompression-bomb limit) and make sure it is not cut off;
    ValueError naming the file otherwise."""
    try:
        with Image.open(path) as opened:
            if not _ends_whole(Path(path)):
                opened.load()  # the marker is missing: decode to tell a cut-off file from an unusual one
    except READ_ERRORS as error:
        raise _unreadable(path, error) from error


def check_image_files(files: list[Path], progress: bool = True) -> None:
    """Check every file (check_image_file) in parallel before a run writes anything, so a damaged file is
    named now and not at step 2; a progress bar appears when it takes more than two seconds."""
    with ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="check-images") as pool:
        checks = pool.map(check_image_file, files)
        for _ in tqdm(checks, total=len(files), desc="checking image files", unit="file", delay=2.0,
                      disable=not progress, leave=False):
            pass
