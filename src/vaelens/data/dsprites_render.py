"""Procedural dSprites: the exact factor grid of docs/science.md ("dSprites") and a vectorised renderer.

Grid: 3 shapes (square, ellipse, heart) x 6 scales linspace(0.5, 1, 6) x 40 orientations
linspace(0, 2 pi, 40) (both endpoints, so orientation 0 and 39 render the same image) x 32 posX
x 32 posY linspace(0, 1, 32): 737,280 binary 64 x 64 images,
index = classes . (245760, 40960, 1024, 32, 1) with posY fastest.

Geometry (the original renderer is undocumented; these are our documented choices):
- the sprite centre is at (0.25 + 0.5 pos) * 64 pixels from the top-left image corner, in
  continuous coordinates where pixel i covers [i, i + 1); posX runs left to right along columns,
  posY top to bottom along rows;
- every shape is drawn in a unit frame and scaled by scale * 9.6 pixels, so the scale-1 square
  is 19.2 px wide (the original square at scale 1 is about 19 px) and the scale-0.5 one 9.6 px;
- square: |u|, |v| <= 1; ellipse: semi-axes 1.2 (along u) and 0.6 (along v), an oval like the
  original's; heart: the implicit curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, whose bounding box
  x in [-1.139, 1.139], y in [-1, 1.2365] is centred and scaled into the unit frame;
- orientation rotates the shape counter-clockwise (as seen on screen) about its centre;
- a pixel is on when at least half of its 4 x 4 sub-samples fall inside the shape.

Determinism: the per-image numbers (centres, cosines, scales) come from fixed float64 tables
cast to float32, and the per-sample work uses only +, -, *, abs, max and comparisons, which are
exactly rounded; an image is therefore bit-identical however the indices are batched.
"""

from __future__ import annotations

import math

import numpy as np
import torch

RENDERER_VERSION = 1
"""Bump whenever a change alters any rendered pixel: it invalidates cached grids."""

IMAGE_SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
FACTOR_STRIDES = (245760, 40960, 1024, 32, 1)
NUM_IMAGES = 737_280

SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * math.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

HALF_EXTENT_AT_SCALE_1 = 9.6
"""Pixels from the centre to a side of the unrotated square at scale 1."""
SUPERSAMPLING = 4
_WINDOW = 31
"""Every sprite fits in a 31 x 31 pixel window around its centre (largest radius 9.6 * sqrt(2) < 15)."""
_ELLIPSE_SEMI_AXES = (1.2, 0.6)
_HEART_HALF_WIDTH = 1.139
_HEART_Y_CENTRE = (1.2365 - 1.0) / 2.0

_CENTRES = (0.25 + 0.5 * POSITIONS) * IMAGE_SIZE
_ORIGINS = np.floor(_CENTRES).astype(np.int64) - _WINDOW // 2
_STRIDES_TENSOR = torch.tensor(FACTOR_STRIDES, dtype=torch.int64)
_SIZES_TENSOR = torch.tensor(FACTOR_SIZES, dtype=torch.int64)


def _table(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.float64)).to(torch.float32)


_COS = _table(np.cos(ORIENTATIONS))
_SIN = _table(np.sin(ORIENTATIONS))
_INVERSE_HALF_EXTENT = _table(1.0 / (SCALES * HALF_EXTENT_AT_SCALE_1))
_ORIGIN_MINUS_CENTRE = _table(_ORIGINS - _CENTRES)
_ORIGINS_TENSOR = torch.from_numpy(_ORIGINS)
# Sub-sample offsets inside the window: pixel j, sample k sits at j + (k + 0.5) / 4 (exact in float32).
_SUBSAMPLE_OFFSETS = (torch.arange(_WINDOW * SUPERSAMPLING, dtype=torch.float32) + 0.5) / SUPERSAMPLING


def _as_classes(classes) -> torch.Tensor:
    classes = torch.as_tensor(classes)
    if classes.dtype.is_floating_point or classes.dtype == torch.bool:
        raise TypeError(f"dSprites factor classes must be integers, got dtype {classes.dtype}")
    classes = classes.to(torch.int64).cpu()
    if classes.ndim != 2 or classes.shape[1] != len(FACTOR_SIZES):
        raise ValueError(f"dSprites factor classes must have shape (B, 5) ordered {FACTOR_NAMES}, "
                         f"got {tuple(classes.shape)}")
    if bool(((classes < 0) | (classes >= _SIZES_TENSOR)).any()):
        raise ValueError(f"dSprites factor classes out of range; sizes are {dict(zip(FACTOR_NAMES, FACTOR_SIZES))}")
    return classes


def dsprites_index(classes) -> torch.Tensor:
    """Grid index of each row of factor classes (B, 5): classes . (245760, 40960, 1024, 32, 1)."""
    return (_as_classes(classes) * _STRIDES_TENSOR).sum(dim=1)


def dsprites_classes(indices) -> torch.Tensor:
    """Factor classes (B, 5) of grid indices (B,): the inverse of `dsprites_index`."""
    indices = torch.as_tensor(indices).to(torch.int64).cpu().reshape(-1)
    if bool(((indices < 0) | (indices >= NUM_IMAGES)).any()):
        raise ValueError(f"dSprites indices must lie in [0, {NUM_IMAGES}), got min {int(indices.min())}, "
                         f"max {int(indices.max())}")
    return (indices[:, None] // _STRIDES_TENSOR) % _SIZES_TENSOR


def dsprites_factor_values(classes) -> torch.Tensor:
    """Factor values (B, 5): shape as 1, 2, 3; scale; orientation in radians; posX; posY in [0, 1]."""
    classes = _as_classes(classes)
    columns = [classes[:, 0].double() + 1.0, torch.from_numpy(SCALES)[classes[:, 1]],
               torch.from_numpy(ORIENTATIONS)[classes[:, 2]], torch.from_numpy(POSITIONS)[classes[:, 3]],
               torch.from_numpy(POSITIONS)[classes[:, 4]]]
    return torch.stack(columns, dim=1).float()


# Per shape: scales (along u, along v) and an offset along v that map the unit frame to the frame
# the shape's inequality is written in; folding them into the per-image factors saves full-size work.
_SHAPE_FRAMES = (
    (1.0, 1.0, 0.0),
    (1.0 / _ELLIPSE_SEMI_AXES[0], 1.0 / _ELLIPSE_SEMI_AXES[1], 0.0),
    (_HEART_HALF_WIDTH, _HEART_HALF_WIDTH, _HEART_Y_CENTRE),
)


def _inside_shape(shape: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which sub-samples, given in the shape's own frame, fall inside the shape."""
    if shape == 0:
        return torch.maximum(x.abs(), y.abs()) <= 1.0
    if shape == 1:
        return x * x + y * y <= 1.0
    x2, y2 = x * x, y * y
    ring = x2 + y2 - 1.0
    return ring * ring * ring <= x2 * (y2 * y)


def _render_windows(shape: int, classes: torch.Tensor) -> torch.Tensor:
    """Binary 31 x 31 windows (B, 31, 31) around each sprite's centre, for one shape."""
    scale, orientation, pos_x, pos_y = (classes[:, i] for i in range(1, 5))
    scale_u, scale_v, offset_v = _SHAPE_FRAMES[shape]
    inverse_half = _INVERSE_HALF_EXTENT[scale][:, None]
    cos, sin = _COS[orientation][:, None], _SIN[orientation][:, None]
    # Offsets from the centre: x grows to the right; y grows upward, so it is minus the row offset.
    dx = (_ORIGIN_MINUS_CENTRE[pos_x][:, None] + _SUBSAMPLE_OFFSETS) * inverse_half
    dy = -(_ORIGIN_MINUS_CENTRE[pos_y][:, None] + _SUBSAMPLE_OFFSETS) * inverse_half
    # Rotate the sample points by -orientation (the same as rotating the shape by +orientation);
    # u depends on (column, row) as a sum of a column term and a row term, and so does v.
    u = (cos * scale_u * dx)[:, None, :] + (sin * scale_u * dy)[:, :, None]
    v = ((cos * scale_v * dy) + offset_v)[:, :, None] - (sin * scale_v * dx)[:, None, :]
    inside = _inside_shape(shape, u, v).view(len(classes), _WINDOW, SUPERSAMPLING, _WINDOW, SUPERSAMPLING)
    covered = inside.sum(dim=(2, 4), dtype=torch.int16)
    return covered * 2 >= SUPERSAMPLING * SUPERSAMPLING


def render_classes(classes, chunk_size: int = 64) -> torch.Tensor:
    """Binary images (B, 64, 64) as torch.bool on the CPU for factor classes (B, 5)."""
    classes = _as_classes(classes)
    canvas = torch.zeros(len(classes), IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
    window = torch.arange(_WINDOW)
    for start in range(0, len(classes), chunk_size):
        chunk = classes[start:start + chunk_size]
        rows = (_ORIGINS_TENSOR[chunk[:, 4]][:, None] + window)[:, :, None]
        columns = (_ORIGINS_TENSOR[chunk[:, 3]][:, None] + window)[:, None, :]
        for shape in chunk[:, 0].unique().tolist():
            members = (chunk[:, 0] == shape).nonzero().squeeze(1)
            windows = _render_windows(shape, chunk[members])
            canvas[(start + members)[:, None, None], rows[members], columns[members]] = windows
    return canvas


def render_indices(indices, chunk_size: int = 64) -> torch.Tensor:
    """Binary images (B, 64, 64) as torch.bool on the CPU for grid indices (B,)."""
    return render_classes(dsprites_classes(indices), chunk_size)


def pack_images(images: torch.Tensor) -> np.ndarray:
    """Bit-pack binary images (B, 64, 64) into (B, 512) uint8 rows, most significant bit first."""
    return np.packbits(images.reshape(len(images), -1).numpy(), axis=1)


def unpack_images(packed: torch.Tensor) -> torch.Tensor:
    """Float32 images (B, 1, 64, 64) in {0, 1} from packed rows (B, 512), on the rows' device."""
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(len(packed), 1, IMAGE_SIZE, IMAGE_SIZE).to(torch.float32)

