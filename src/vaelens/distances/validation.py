"""Known properties a perceptual distance should have, measured without human judgments.

A distance d(x, x̂) between an image and a distorted copy should grow with the strength of a distortion
(Gaussian blur, additive Gaussian noise, JPEG compression, loss of contrast), and it should judge a one- or
two-pixel translation or a small smooth warp much closer than additive noise of the same pixel MSE: pixel
MSE cannot tell those apart by construction, while a perceptual distance should.

Every distortion acts on a *context*: a patch with a margin of CONTEXT_MARGIN pixels around it, so a
translation shows real image content rather than a wrapped or padded border; the compared images are the
central crops. `photo_contexts` cuts such contexts from the scikit-image photos the `natural` data set holds
out (vaelens.data.natural.TEST_PHOTOS), so the networks fitted on its training photos never saw them.
`property_table` runs every distance over every distortion; benchmarks/validate_perceptual.py prints it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vaelens.data.natural import MAX_SHORTER_SIDE, MIN_PATCH_STD, TEST_PHOTOS, photo_folder
from vaelens.sampling import random_subset

CONTEXT_MARGIN = 8
"""Pixels of context kept on every side of a patch (more than any translation or warp moves content)."""

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def central_crop(contexts: torch.Tensor, margin: int = CONTEXT_MARGIN) -> torch.Tensor:
    """The patches inside their contexts: (N, C, S + 2m, S + 2m) -> (N, C, S, S)."""
    return contexts[..., margin:contexts.shape[-2] - margin, margin:contexts.shape[-1] - margin]


def _photo(name: str, scale: int) -> np.ndarray:
    """A held-out photo at the `natural` data set's scale (shorter side at most 512), reduced by `scale`."""
    photo = Image.open(photo_folder() / name).convert("RGB")
    factor = min(1.0, MAX_SHORTER_SIDE / min(photo.size))
    if factor < 1.0:
        photo = photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.Resampling.LANCZOS)
    return np.asarray(photo.reduce(scale) if scale > 1 else photo, dtype=np.uint8)


def photo_contexts(side: int, count: int, seed: int, photos: Sequence[str] = TEST_PHOTOS) -> tuple[torch.Tensor, dict]:
    """Up to `count` contexts (N, 3, side + 2m, side + 2m) in [0, 1], float64, from the held-out photos.

    side 64 cuts the photos at the data set's scale, side 32 at half of it (as its 32 x 32 patches, which
    are its 64 x 64 ones averaged down). Contexts lie on a grid of stride `side`; those whose central patch is
    near-uniform (luma std below the data set's MIN_PATCH_STD) are dropped, then a seeded subset is kept.
    Returns the contexts and where they came from (photo -> number of contexts before the subset).
    """
    if side not in (32, 64):
        raise ValueError(f"side must be 32 or 64 (the natural data set's sizes), got {side}")
    full, kept, sources = side + 2 * CONTEXT_MARGIN, [], {}
    for name in photos:
        pixels = _photo(name, 64 // side)
        windows = np.lib.stride_tricks.sliding_window_view(pixels, (full, full), axis=(0, 1))[::side, ::side]
        contexts = torch.from_numpy(windows.reshape(-1, 3, full, full).astype(np.float64) / 255.0)
        luma = central_crop(contexts).mean(dim=1)
        contexts = contexts[luma.flatten(1).std(dim=1) >= MIN_PATCH_STD]
        sources[name] = len(contexts)
        kept.append(contexts)
    contexts = torch.cat(kept)
    return contexts[random_subset(len(contexts), count, seed)].contiguous(), sources


def gaussian_blur(contexts: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of standard deviation `sigma` pixels (kernel radius 3 sigma, reflected edges)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=contexts.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = contexts.shape[1]
    out = F.pad(contexts, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous(), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1).contiguous(), groups=channels)


def _noise(shape, seed: int, dtype) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def gaussian_noise(contexts: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """Additive Gaussian noise of standard deviation `std`, clipped to [0, 1]."""
    return (contexts + std * _noise(contexts.shape, seed, contexts.dtype)).clamp(0, 1)


def jpeg(contexts: torch.Tensor, quality: int) -> torch.Tensor:
    """A JPEG round trip through PIL at `quality` (1-95; 4:2:0 chroma subsampling, PIL's default)."""
    out = []
    for context in contexts:
        pixels = (context.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float64) / 255.0
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out).to(contexts.dtype)


def contrast(contexts: torch.Tensor, reduction: float) -> torch.Tensor:
    """Contrast scaled by 1 - `reduction` about each patch's mean colour (stays inside [0, 1])."""
    mean = central_crop(contexts).mean(dim=(2, 3), keepdim=True)
    return mean + (1.0 - reduction) * (contexts - mean)


def translate(contexts: torch.Tensor, pixels: int) -> torch.Tensor:
    """The scene moved `pixels` to the right and `pixels` down: real content from the margin, no padding."""
    if not 0 <= pixels <= CONTEXT_MARGIN:
        raise ValueError(f"a translation must stay within the context margin (0-{CONTEXT_MARGIN} px), got {pixels}")
    return torch.roll(contexts, shifts=(pixels, pixels), dims=(2, 3))


def elastic_warp(contexts: torch.Tensor, amplitude: float, seed: int, smoothness: float = 4.0) -> torch.Tensor:
    """A smooth random warp: each pixel moves by a displacement field (white noise blurred with sigma
    `smoothness` px) scaled so its largest displacement over the patch is `amplitude` px; bilinear resampling."""
    _, _, height, width = contexts.shape
    field = _noise((1, 2, height, width), seed, contexts.dtype)
    field = gaussian_blur(field, smoothness)
    field = field * (amplitude / central_crop(field).norm(dim=1).max())
    rows, columns = torch.meshgrid(torch.arange(height, dtype=contexts.dtype),
                                   torch.arange(width, dtype=contexts.dtype), indexing="ij")
    sample_x = (columns + field[0, 0]) / (width - 1) * 2 - 1
    sample_y = (rows + field[0, 1]) / (height - 1) * 2 - 1
    grid = torch.stack((sample_x, sample_y), dim=-1).unsqueeze(0).expand(len(contexts), -1, -1, -1)
    return F.grid_sample(contexts, grid, mode="bilinear", padding_mode="border", align_corners=True)


def pixel_mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel difference per image, (N,)."""
    return (x - x_hat).pow(2).flatten(1).mean(dim=1)


def noise_of_equal_mse(contexts: torch.Tensor, target_mse: torch.Tensor, seed: int, steps: int = 40) -> torch.Tensor:
    """Gaussian noise, clipped to [0, 1], whose pixel MSE on each central patch equals `target_mse` (N,)
    (bisection on each image's noise scale: clipping makes the MSE a monotone, not linear, function of it)."""
    noise = _noise(contexts.shape, seed, contexts.dtype)
    low = torch.zeros(len(contexts), dtype=contexts.dtype)
    high = torch.ones(len(contexts), dtype=contexts.dtype)
    reference = central_crop(contexts)

    def mse_at(scale):
        noisy = (contexts + scale.view(-1, 1, 1, 1) * noise).clamp(0, 1)
        return pixel_mse(reference, central_crop(noisy)), noisy

    for _ in range(steps):
        middle = (low + high) / 2
        too_much = mse_at(middle)[0] > target_mse
        high, low = torch.where(too_much, middle, high), torch.where(too_much, low, middle)
    return mse_at((low + high) / 2)[1]


@dataclass(frozen=True)
class Ladder:
    """A distortion at increasing strengths: a distance should grow along it, image by image."""

    name: str
    """What the distortion is."""
    parameter: str
    """What the levels are (the parameter of `apply`)."""
    levels: tuple[float, ...]
    """The levels, weakest distortion first."""
    apply: Callable[[torch.Tensor, float, int], torch.Tensor]
    """(contexts, level, seed) -> distorted contexts."""


@dataclass(frozen=True)
class Rival:
    """A distortion a perceptual distance should judge much closer than additive noise of the same pixel MSE."""

    name: str
    """What the distortion is."""
    apply: Callable[[torch.Tensor, int], torch.Tensor]
    """(contexts, seed) -> distorted contexts."""


def _blur(contexts, level, seed):
    return gaussian_blur(contexts, level)


def _noise_level(contexts, level, seed):
    return gaussian_noise(contexts, level, seed)


def _jpeg(contexts, level, seed):
    return jpeg(contexts, int(level))


def _contrast(contexts, level, seed):
    return contrast(contexts, level)


LADDERS = (
    Ladder("Gaussian blur", "sigma (px)", (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0), _blur),
    Ladder("Gaussian noise", "std", (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2), _noise_level),
    Ladder("JPEG", "quality", (95, 90, 80, 70, 50, 30, 20, 10), _jpeg),
    Ladder("contrast loss", "reduction", (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7), _contrast),
)
"""The monotonicity checks of docs/perceptual.md."""
RIVALS = (
    Rival("1-px translation", lambda contexts, seed: translate(contexts, 1)),
    Rival("2-px translation", lambda contexts, seed: translate(contexts, 2)),
    Rival("elastic warp (max 1 px)", lambda contexts, seed: elastic_warp(contexts, 1.0, seed)),
    Rival("elastic warp (max 2 px)", lambda contexts, seed: elastic_warp(contexts, 2.0, seed)),
)
"""The equal-MSE checks of docs/perceptual.md."""


@torch.no_grad()
def monotonicity(distances: Mapping[str, Distance], contexts: torch.Tensor, ladder: Ladder, seed: int) -> list[dict]:
    """For each distance: its mean over the images at each level, and how many images it ranks in strictly
    increasing order along the whole ladder (`monotone` of `images`)."""
    reference = central_crop(contexts)
    distorted = [central_crop(ladder.apply(contexts, level, seed)) for level in ladder.levels]
    rows = []
    for name, distance in distances.items():
        values = torch.stack([distance(reference, images).double() for images in distorted], dim=1)
        increasing = (values[:, 1:] > values[:, :-1]).all(dim=1)
        rows.append({"distance": name, "distortion": ladder.name, "parameter": ladder.parameter,
                     "levels": list(ladder.levels), "mean": values.mean(dim=0).tolist(),
                     "monotone": int(increasing.sum()), "images": len(values)})
    return rows


@torch.no_grad()
def equal_mse_comparison(distances: Mapping[str, Distance], contexts: torch.Tensor, rival: Rival,
                         seed: int) -> list[dict]:
    """For each distance: d(x, rival) / d(x, noise of the same pixel MSE) per image, summarised by its median
    and geometric mean, and how many images it judges the rival closer than the noise (`closer` of `images`)."""
    reference = central_crop(contexts)
    moved = central_crop(rival.apply(contexts, seed))
    noisy = central_crop(noise_of_equal_mse(contexts, pixel_mse(reference, moved), seed))
    rows = []
    for name, distance in distances.items():
        ratio = distance(reference, moved).double() / distance(reference, noisy).double()
        rows.append({"distance": name, "distortion": rival.name, "median_ratio": float(ratio.median()),
                     "geometric_mean_ratio": float(ratio.log().mean().exp()), "closer": int((ratio < 1).sum()),
                     "images": len(ratio), "pixel_mse": float(pixel_mse(reference, moved).mean())})
    return rows


def property_table(distances: Mapping[str, Distance], contexts: torch.Tensor, seed: int,
                   ladders: Sequence[Ladder] = LADDERS, rivals: Sequence[Rival] = RIVALS) -> dict:
    """Every check for every distance on `contexts`: {"monotonicity": [...], "equal_mse": [...]}."""
    return {"monotonicity": [row for ladder in ladders for row in monotonicity(distances, contexts, ladder, seed)],
            "equal_mse": [row for rival in rivals for row in equal_mse_comparison(distances, contexts, rival, seed)]}


def _markdown(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)


def markdown_tables(table: dict, distance_names: Sequence[str]) -> tuple[str, str]:
    """The two tables of `property_table` in Markdown, one column per distance: images ranked monotone, and
    median d(rival) / d(noise of equal MSE) with the images judged closer."""
    by_key = {(row["distortion"], row["distance"]): row for row in table["monotonicity"]}
    distortions = list(dict.fromkeys(row["distortion"] for row in table["monotonicity"]))
    monotone_lines = []
    for distortion in distortions:
        first = by_key[(distortion, distance_names[0])]
        levels = ", ".join(f"{level:g}" for level in first["levels"])
        cells = [f"{by_key[(distortion, name)]['monotone']}/{by_key[(distortion, name)]['images']}"
                 for name in distance_names]
        monotone_lines.append([f"{distortion} ({first['parameter']} {levels})", *cells])
    by_key = {(row["distortion"], row["distance"]): row for row in table["equal_mse"]}
    rivals = list(dict.fromkeys(row["distortion"] for row in table["equal_mse"]))
    ratio_lines = []
    for rival in rivals:
        cells = [f"{by_key[(rival, name)]['median_ratio']:.3g} ({by_key[(rival, name)]['closer']}/"
                 f"{by_key[(rival, name)]['images']})" for name in distance_names]
        ratio_lines.append([f"{rival} (MSE {by_key[(rival, distance_names[0])]['pixel_mse']:.2g})", *cells])
    header = ["distortion", *distance_names]
    return _markdown(header, monotone_lines), _markdown(header, ratio_lines)
