"""The three ways of fitting a feature network: each holds its head, its training loss and its held-out report.

All share one interface: `head` (an nn.Module trained alongside the network, then discarded),
`loss(network, images, labels, generator)` -> scalar, and `evaluate(network, images, labels)` -> dict
of held-out numbers (always with a "loss" entry: the training objective on the held-out images).
Losses are in nats (cross-entropies) or squared pixel units (denoising MSE).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vaelens.features.augment import contrastive_view, corrupt
from vaelens.features.network import (
    DenoisingDecoder,
    FactorClassifierHeads,
    FeatureNetwork,
    ProjectionHead,
    pooled_representation,
)

EVAL_CHUNK = 256
EVAL_SEED = 12345
"""Held-out corruptions/augmentations use this fixed seed, so the same images are scored before and after."""


def _chunks(count: int):
    return (slice(start, min(start + EVAL_CHUNK, count)) for start in range(0, count, EVAL_CHUNK))


class SupervisedObjective:
    """Mean over factors of the cross-entropy of classifying each ground-truth factor's class."""

    description = "mean over factors of the classification cross-entropy (nats)"

    def __init__(self, network: FeatureNetwork, factor_names: Sequence[str], factor_sizes: Sequence[int]):
        self.factor_names = tuple(factor_names)
        self.head = FactorClassifierHeads(network.widths[-1], factor_sizes)

    def _cross_entropies(self, network, images, labels) -> torch.Tensor:
        logits = self.head(network(images))
        return torch.stack([F.cross_entropy(factor_logits, labels[:, k]) for k, factor_logits in enumerate(logits)])

    def loss(self, network, images, labels, generator) -> torch.Tensor:
        return self._cross_entropies(network, images, labels).mean()

    @torch.no_grad()
    def evaluate(self, network, images, labels) -> dict:
        count = len(images)
        correct = torch.zeros(len(self.factor_names), dtype=torch.float64)
        cross_entropy = torch.zeros(len(self.factor_names), dtype=torch.float64)
        for part in _chunks(count):
            logits = self.head(network(images[part]))
            for k, factor_logits in enumerate(logits):
                target = labels[part, k]
                correct[k] += float((factor_logits.argmax(dim=1) == target).sum())
                cross_entropy[k] += float(F.cross_entropy(factor_logits, target, reduction="sum"))
        # The honest floor: always answering the most frequent class of these held-out images.
        majority = [float(torch.bincount(labels[:, k].cpu()).max()) / count for k in range(len(self.factor_names))]
        accuracy = (correct / count).tolist()
        return {"loss": float(cross_entropy.sum() / count / len(self.factor_names)),
                "accuracy": dict(zip(self.factor_names, accuracy)),
                "chance_accuracy": dict(zip(self.factor_names, majority)),
                "mean_accuracy": sum(accuracy) / len(accuracy),
                "images": count}


class DenoisingObjective:
    """Mean squared error of restoring the clean image from a noised, block-masked one through the features."""

    description = "pixel MSE of reconstructing clean images from corrupted ones (Gaussian noise 0.1 + masked blocks)"

    def __init__(self, network: FeatureNetwork):
        self.head = DenoisingDecoder(network.widths, network.in_channels)

    def _restore(self, network, corrupted) -> torch.Tensor:
        return self.head(network(corrupted), tuple(corrupted.shape[-2:]))

    def loss(self, network, images, labels, generator) -> torch.Tensor:
        return F.mse_loss(self._restore(network, corrupt(images, generator)), images)

    @torch.no_grad()
    def evaluate(self, network, images, labels) -> dict:
        generator = torch.Generator(images.device).manual_seed(EVAL_SEED)
        restored_error = corrupted_error = 0.0
        for part in _chunks(len(images)):
            clean = images[part]
            corrupted = corrupt(clean, generator)
            restored_error += float(F.mse_loss(self._restore(network, corrupted), clean, reduction="sum"))
            corrupted_error += float(F.mse_loss(corrupted, clean, reduction="sum"))
        pixels = images.numel()
        reconstruction_mse = restored_error / pixels
        identity_mse = corrupted_error / pixels
        return {"loss": reconstruction_mse, "reconstruction_mse": reconstruction_mse,
                "identity_mse": identity_mse, "mse_ratio_to_identity": reconstruction_mse / identity_mse,
                "images": len(images)}


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy: each of the 2N embeddings must pick its partner
    view among the other 2N - 1 (cosine similarity / temperature)."""
    count = len(first)
    embeddings = F.normalize(torch.cat([first, second]), dim=1)
    logits = embeddings @ embeddings.T / temperature
    self_pairs = torch.eye(2 * count, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    partners = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(logits.device)
    return F.cross_entropy(logits, partners)


def retrieval_top1(first: torch.Tensor, second: torch.Tensor) -> float:
    """Fraction of first-view embeddings whose most cosine-similar second view is their own partner."""
    similarity = F.normalize(first, dim=1) @ F.normalize(second, dim=1).T
    partners = torch.arange(len(first), device=similarity.device)
    return float((similarity.argmax(dim=1) == partners).float().mean())


def alignment(first: torch.Tensor, second: torch.Tensor) -> float:
    """Mean squared distance between unit-normalised partner embeddings (Wang & Isola 2020; 0 is perfect, 4 the max)."""
    return float((F.normalize(first, dim=1) - F.normalize(second, dim=1)).pow(2).sum(dim=1).mean())


class ContrastiveObjective:
    """SimCLR: NT-Xent between projections of two random views (crop + mirror + colour jitter) of each image."""

    temperature = 0.2
    max_eval_images = 512
    description = f"NT-Xent between two augmented views, temperature {temperature} (nats)"

    def __init__(self, network: FeatureNetwork, embedding_dim: int = 64):
        self.head = ProjectionHead(network.widths[-1], embedding_dim)

    def loss(self, network, images, labels, generator) -> torch.Tensor:
        first = self.head(network(contrastive_view(images, generator)))
        second = self.head(network(contrastive_view(images, generator)))
        return nt_xent(first, second, self.temperature)

    @torch.no_grad()
    def evaluate(self, network, images, labels) -> dict:
        images = images[: self.max_eval_images]
        generator = torch.Generator(images.device).manual_seed(EVAL_SEED)
        views = {"first": ([], []), "second": ([], [])}
        for part in _chunks(len(images)):
            for representations, projections in views.values():
                features = network(contrastive_view(images[part], generator))
                representations.append(pooled_representation(features))
                projections.append(self.head(features))
        (rep_1, proj_1), (rep_2, proj_2) = [(torch.cat(r), torch.cat(p)) for r, p in views.values()]
        return {"loss": float(nt_xent(proj_1, proj_2, self.temperature)),
                "retrieval_top1": retrieval_top1(rep_1, rep_2),
                "retrieval_top1_projection": retrieval_top1(proj_1, proj_2),
                "alignment": alignment(rep_1, rep_2),
                "chance_retrieval": 1.0 / len(images),
                "images": len(images)}
