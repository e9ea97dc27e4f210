"""The mechanistic probe (docs/science.md, "Neural losses as metrics"): does the loss metric set each posterior
variance?

Linearise the decoder around the posterior mean, g(mu + eps) ≈ g(mu) + J_g eps. Then
E_q[scale * d(x, g(z))] ≈ scale * d(x, g(mu)) + scale * sum_j sigma_j^2 (J_g^T M_x J_g)_jj, and
minimising that plus beta * KL over each sigma_j^2 gives

    sigma_j^2(x) = 1 / (1 + (2 scale / beta) (J_g^T M_x J_g)_jj).

The probe computes this prediction per image and unit from d forward-mode JVPs of the decoder
(one per unit) and d metric-vector products, and compares it with the encoder's exp(logvar).
For the linear VAE at its optimum the two coincide exactly ((J^T M J)_jj = lambda_j - theta).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy import stats

from vaelens.distances.curvature import gradient_graph

METRIC_POINTS = ("data", "reconstruction")


@dataclass(frozen=True)
class ProbeResult:
    """Predicted and actual posterior variances, (N, d) each, and how well they agree."""

    predicted_variance: np.ndarray
    """(N, d) 1 / (1 + (2 scale / beta) (J_g^T M_x J_g)_jj)."""
    actual_variance: np.ndarray
    """(N, d) exp(logvar) from the encoder."""
    metric_column_norms: np.ndarray
    """(N, d) (J_g^T M_x J_g)_jj: metric-weighted squared norms of the decoder-Jacobian columns."""
    pearson_log: float
    """Pearson correlation of log predicted vs log actual variance over (image, unit) pairs."""
    spearman_log: float
    """Spearman rank correlation of the same pairs."""
    median_log_ratio: float
    """Median of log(actual / predicted); 0 means no systematic bias."""
    iqr_log_ratio: float
    """Interquartile range of log(actual / predicted)."""
    profile_pearson_log: float
    """Pearson correlation over units of log E_x predicted vs log E_x actual (the profile)."""
    negative_curvature_count: int
    """Pairs whose (J^T M J)_jj came out negative (indefinite Hessian), clamped to 0."""
    beta: float
    """KL weight of the training loss."""
    scale: float
    """Weight of loss_fn in the training loss."""
    metric_at: str
    """Where M_x was evaluated: "data" (x̂ = x) or "reconstruction" (x̂ = g(mu(x)))."""

    @property
    def predicted_profile(self) -> np.ndarray:
        """(d,) E_x of the predicted posterior variance per unit."""
        return self.predicted_variance.mean(0)

    @property
    def actual_profile(self) -> np.ndarray:
        """(d,) E_x of the encoder's posterior variance per unit."""
        return self.actual_variance.mean(0)

    def to_dict(self) -> dict:
        """JSON-friendly summary: statistics (NaN -> None), both profiles, the data shape."""
        summary = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                continue
            if isinstance(value, float) and not np.isfinite(value):
                value = None
            summary[field.name] = value
        summary["num_images"], summary["latent_dim"] = (int(s) for s in self.actual_variance.shape)
        summary["predicted_profile"] = self.predicted_profile.tolist()
        summary["actual_profile"] = self.actual_profile.tolist()
        return summary


def precision_rate(variances) -> float:
    """sum_j 1/2 log(1 / v_j) over latent units, in nats: the part of the rate the posterior variances set
    (a unit's KL to N(0, 1) is 1/2 (mu_j^2 + v_j - 1 - log v_j); the rest comes from the spread of the means).
    With v_j the probe's predicted sigma_j^2 it is the rate the loss's curvature alone implies."""
    variances = np.asarray(variances, dtype=np.float64)
    if variances.ndim != 1 or not variances.size or not np.all(variances > 0) or not np.all(np.isfinite(variances)):
        raise ValueError(f"precision_rate needs a non-empty vector of positive, finite variances, got {variances!r}")
    return float(0.5 * np.log(1.0 / variances).sum())


def _correlation(kind, a: np.ndarray, b: np.ndarray) -> float:
    # A constant input has no correlation: report NaN rather than a scipy warning.
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kind(a, b)[0])


def _check_arguments(x, beta: float, scale: float, loss_fn, metric_fn, metric_at: str,
                     batch_size) -> None:
    if (loss_fn is None) == (metric_fn is None):
        raise ValueError("give exactly one of loss_fn (a per-image loss) or "
                         "metric_fn (x, v, x_hat) -> M v")
    if metric_at not in METRIC_POINTS:
        raise ValueError(f"metric_at must be one of {METRIC_POINTS}, got {metric_at!r}")
    if not (np.isfinite(beta) and beta > 0 and np.isfinite(scale) and scale > 0):
        raise ValueError(f"beta and scale must be positive finite numbers, got beta={beta}, "
                         f"scale={scale}")
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] < 1 or not x.is_floating_point():
        raise ValueError("x must be a floating tensor batch of images (N, ...) with N >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_posterior_outputs(mu, logvar, batch: int) -> None:
    for name, value in (("mu", mu), ("logvar", logvar)):
        if not isinstance(value, torch.Tensor) or value.ndim < 2 or value.shape[0] != batch:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"encode(x) must return (mu, logvar) tensors of shape ({batch}, ...), "
                             f"got {name} {shape}")
    if mu.shape != logvar.shape:
        raise ValueError(f"encode(x) returned mu {tuple(mu.shape)} and logvar "
                         f"{tuple(logvar.shape)} of different shapes")
    if not (torch.isfinite(mu).all() and torch.isfinite(logvar).all()):
        raise ValueError("encode(x) returned NaN/Inf in mu or logvar; check the model first")


UNIT_CHUNK_ROWS = 1024
"""Images x units pushed through the decoder in one batched JVP call: units are vmapped (several
times faster than one call per unit on a CPU) in chunks that bound the activation memory."""


def _decoder_columns(decode, mu: torch.Tensor, units: range) -> torch.Tensor:
    """(U, B, ...) J_g e_j for the units in `units`: forward-mode JVPs, vmapped over the units."""
    flat = mu.flatten(1)
    tangents = torch.eye(flat.shape[1], dtype=mu.dtype, device=mu.device)[units.start:units.stop]
    tangents = tangents[:, None, :].expand(len(units), *flat.shape).reshape(len(units), *mu.shape)
    with warnings.catch_warnings():
        # torch's first forward-mode call scripts its own decompositions and warns about
        # torch.jit.script itself: nothing the caller did or can change.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        return torch.func.vmap(lambda tangent: torch.func.jvp(decode, (mu,), (tangent,))[1])(tangents).detach()


def _loss_metric_products(loss_fn, x: torch.Tensor, columns: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """(U, B, ...) M_x v for each v in `columns`: half the Hessian of loss_fn(x, .) at `point`. The
    gradient graph is built once and the U Hessian-vector products reuse it (one backward each: a
    batched backward, is_grads_batched, measured slower on a CPU)."""
    with torch.enable_grad():
        point, gradient = gradient_graph(loss_fn, x, point)
        if gradient is None:  # the loss is linear (or constant) in x_hat: no curvature anywhere
            return torch.zeros_like(columns)
        products = [torch.autograd.grad(gradient, point, grad_outputs=column.to(point.dtype), retain_graph=True,
                                        allow_unused=True)[0] for column in columns]
    if products[0] is None:
        return torch.zeros_like(columns)
    return 0.5 * torch.stack(products).detach()


def _metric_column_norms(decode, loss_fn, metric_fn, x: torch.Tensor, mu: torch.Tensor,
                         metric_at: str) -> torch.Tensor:
    """(B, d) (J_g^T M_x J_g)_jj for one batch: one decoder JVP and metric product per unit."""
    reconstruction = decode(mu).detach()
    if reconstruction.shape != x.shape:
        raise ValueError(f"decode(mu) must return images of the shape of x {tuple(x.shape)}, "
                         f"got {tuple(reconstruction.shape)}")
    point = x if metric_at == "data" else reconstruction
    units = mu[0].numel()
    step = max(1, UNIT_CHUNK_ROWS // x.shape[0])
    norms = []
    for first in range(0, units, step):
        columns = _decoder_columns(decode, mu, range(first, min(first + step, units)))
        if metric_fn is not None:
            products = torch.stack([metric_fn(x, column, point) for column in columns])
        else:
            products = _loss_metric_products(loss_fn, x, columns, point)
        norms.append((columns * products).flatten(2).sum(2).T)
    return torch.cat(norms, 1)


def mechanistic_probe(encode, decode, x: torch.Tensor, beta: float, scale: float = 1.0, *,
                      loss_fn=None, metric_fn=None, metric_at: str = "data",
                      batch_size: int = 64) -> ProbeResult:
    """Predict each posterior variance from the decoder Jacobian and the loss metric; compare.

    encode(x) -> (mu, logvar), each (B, ...) latents (flat or spatial); decode(z) -> x̂ shaped
    like x, in the space where the loss is measured. For a Bernoulli decoder pass
    decode = lambda z: torch.sigmoid(model.decode(z)), or keep logits and use
    metric_at="reconstruction" with a loss that reads logits. The training loss must be
    scale * loss_fn(x, x̂) + beta * KL. Give either loss_fn(x, x_hat) -> (B,) (its metric is half
    its Hessian, see `metric_vector_product`) or metric_fn(x, v, x_hat) -> M v, batched like x.
    metric_at: "data" evaluates M at x̂ = x as the theory does; "reconstruction" at x̂ = g(mu(x)).
    decode must support forward-mode AD under torch.func.vmap (the units' JVPs are batched) and
    treat images independently.
    """
    beta, scale = float(beta), float(scale)
    _check_arguments(x, beta, scale, loss_fn, metric_fn, metric_at, batch_size)
    norms, logvars = [], []
    for start in range(0, x.shape[0], batch_size):
        batch = x[start:start + batch_size]
        with torch.no_grad():
            mu, logvar = encode(batch)
        _check_posterior_outputs(mu, logvar, batch.shape[0])
        batch_norms = _metric_column_norms(decode, loss_fn, metric_fn, batch, mu.detach(), metric_at)
        norms.append(batch_norms.double().cpu())
        logvars.append(logvar.detach().flatten(1).double().cpu())
    column_norms = torch.cat(norms).numpy()
    actual = np.exp(torch.cat(logvars).numpy())

    predicted = 1.0 / (1.0 + (2 * scale / beta) * np.clip(column_norms, 0.0, None))
    log_predicted, log_actual = np.log(predicted).ravel(), np.log(actual).ravel()
    q25, q50, q75 = np.percentile(log_actual - log_predicted, [25, 50, 75])
    return ProbeResult(
        predicted_variance=predicted, actual_variance=actual, metric_column_norms=column_norms,
        pearson_log=_correlation(stats.pearsonr, log_predicted, log_actual),
        spearman_log=_correlation(stats.spearmanr, log_predicted, log_actual),
        median_log_ratio=float(q50), iqr_log_ratio=float(q75 - q25),
        profile_pearson_log=_correlation(stats.pearsonr, np.log(predicted.mean(0)),
                                         np.log(actual.mean(0))),
        negative_curvature_count=int((column_norms < 0).sum()),
        beta=beta, scale=scale, metric_at=metric_at,
    )


def plot_probe(result: ProbeResult, path) -> None:
    """Scatter of log predicted vs log actual posterior variance (one dot per image and unit)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.5, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    log_predicted = np.log(result.predicted_variance).ravel()
    log_actual = np.log(result.actual_variance).ravel()
    axes.scatter(log_predicted, log_actual, s=4, alpha=0.4)
    low = float(min(log_predicted.min(), log_actual.min()))
    high = float(max(log_predicted.max(), log_actual.max(), low + 1e-6))
    axes.plot([low, high], [low, high], color="black", linewidth=0.8, label="prediction = actual")
    axes.set_xlabel("log predicted sigma^2 (metric-weighted Jacobian)")
    axes.set_ylabel("log actual sigma^2 (encoder)")
    axes.set_title(f"Spearman {result.spearman_log:.3f}, "
                   f"median log ratio {result.median_log_ratio:.3f}", fontsize=9)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
