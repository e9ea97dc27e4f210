"""Disentanglement scores on data with ground-truth factors, following disentanglement_lib's defaults.

- `mutual_information_gap` (MIG; Chen et al. 2018)
- `factorvae_score` (Kim & Mnih 2018)
- `dci` (Eastwood & Williams 2018; gradient-boosted-tree importances)
- `sap_score` (Kumar et al. 2018)

Inputs: codes are (N, d) posterior means (numpy or torch, any device); factors are (N, K) integer
class indices. Every function returns a `DisentanglementResult`: a headline `score`, a flat
JSON-ready `scores` dict, and the matrices behind them in `details`. Randomness (sampling,
subsampling, the tree ensembles, the SVM solver) is driven by an explicit `seed`.
Mutual information and entropies are in nats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.stats
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from vaelens.checks import as_float_tensor, check_finite, check_matrix

__all__ = ["DisentanglementResult", "dci", "dci_from_importance", "factorvae_score", "histogram_discretize",
           "mutual_information_gap", "sap_score"]


@dataclass(frozen=True)
class DisentanglementResult:
    """A disentanglement score with everything behind it; float(result) gives the headline score."""

    score: float
    """The headline number (MIG, FactorVAE eval accuracy, DCI disentanglement, SAP)."""
    scores: dict[str, float]
    """Every scalar the metric produces, keys prefixed by the metric name (JSON-ready)."""
    details: dict[str, np.ndarray] = field(default_factory=dict)
    """Matrices and per-factor vectors behind the scalars."""

    def __float__(self) -> float:
        return self.score


def _as_codes(codes, name: str, min_rows: int = 2) -> np.ndarray:
    tensor = as_float_tensor(codes, name)
    check_matrix(tensor, name, min_rows)
    check_finite(tensor, name)
    return tensor.detach().cpu().numpy()


def _as_factors(factors, name: str) -> np.ndarray:
    tensor = as_float_tensor(factors, name)
    check_matrix(tensor, name, min_rows=2)
    check_finite(tensor, name)
    fractional = tensor != tensor.round()
    if bool(fractional.any()):
        example = float(tensor[fractional][0])
        raise ValueError(
            f"{name} must hold integer class indices, found non-integer value {example}; "
            "discretise continuous factors (e.g. into quantile bins) first"
        )
    return tensor.detach().cpu().numpy().astype(np.int64)


def _check_pair(codes: np.ndarray, factors: np.ndarray, codes_name: str, factors_name: str) -> None:
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(
            f"{codes_name} and {factors_name} must have the same number of rows (samples), "
            f"got {codes.shape[0]} and {factors.shape[0]}"
        )


def _check_factors_vary(factors: np.ndarray, name: str) -> None:
    """A factor with a single value carries no information to explain; the metrics are undefined for it."""
    for k in range(factors.shape[1]):
        if np.unique(factors[:, k]).size < 2:
            raise ValueError(f"{name} column {k} takes a single value; drop constant factors before scoring")


def _check_min_columns(array: np.ndarray, name: str, minimum: int, why: str) -> None:
    if array.shape[1] < minimum:
        raise ValueError(f"{name} needs at least {minimum} columns ({why}), got {array.shape[1]}")


def _train_test(codes_train, factors_train, codes_test, factors_test):
    arrays = (
        _as_codes(codes_train, "codes_train"),
        _as_factors(factors_train, "factors_train"),
        _as_codes(codes_test, "codes_test"),
        _as_factors(factors_test, "factors_test"),
    )
    _check_pair(arrays[0], arrays[1], "codes_train", "factors_train")
    _check_pair(arrays[2], arrays[3], "codes_test", "factors_test")
    if arrays[0].shape[1] != arrays[2].shape[1] or arrays[1].shape[1] != arrays[3].shape[1]:
        raise ValueError(
            "train and test sets must have the same numbers of code and factor columns, got "
            f"codes {arrays[0].shape[1]} vs {arrays[2].shape[1]}, factors {arrays[1].shape[1]} vs {arrays[3].shape[1]}"
        )
    _check_factors_vary(arrays[1], "factors_train")
    return arrays


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each code column into `num_bins` equal-width bins over its own range; labels 1..num_bins."""
    discrete = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins=num_bins)[1]
        discrete[:, j] = np.digitize(codes[:, j], edges[:-1])
    return discrete


def mutual_information_gap(codes, factors, num_bins: int = 20) -> DisentanglementResult:
    """MIG: per factor, (largest - second largest) discrete MI with a code, over the factor's entropy; mean.

    Codes are discretised into `num_bins` equal-width histogram bins (disentanglement_lib uses 20
    bins on 10,000 points). Plug-in MI is biased upwards by about (bins - 1)(classes - 1) / (2N),
    so use thousands of points. details: "mutual_information" (d, K), "factor_entropy" (K,),
    "gap_per_factor" (K,).
    """
    codes = _as_codes(codes, "codes")
    factors = _as_factors(factors, "factors")
    _check_pair(codes, factors, "codes", "factors")
    _check_min_columns(codes, "codes", 2, "the gap compares the two most informative codes")
    _check_factors_vary(factors, "factors")
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2, got {num_bins}")
    discrete = histogram_discretize(codes, num_bins)
    mutual_information = np.array(
        [[mutual_info_score(discrete[:, j], factors[:, k]) for k in range(factors.shape[1])]
         for j in range(codes.shape[1])]
    )
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    top_two = np.sort(mutual_information, axis=0)[::-1][:2]
    gap = (top_two[0] - top_two[1]) / entropy
    score = float(gap.mean())
    return DisentanglementResult(
        score=score,
        scores={"mig": score},
        details={"mutual_information": mutual_information, "factor_entropy": entropy, "gap_per_factor": gap},
    )


def _check_factor_sizes(factor_sizes: Sequence[int]) -> np.ndarray:
    sizes = np.asarray(factor_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"factor_sizes must be a non-empty sequence of integers, got {factor_sizes!r}")
    if (sizes < 2).any():
        raise ValueError(f"every factor needs at least 2 values to vary, got factor_sizes {sizes.tolist()}")
    return sizes.astype(np.int64)


def _represent_in_chunks(represent: Callable, factors: np.ndarray, chunk: int, num_codes: int | None) -> np.ndarray:
    """Call `represent` on int64 CPU tensors of at most `chunk` rows; validate and stack the codes."""
    pieces = []
    for start in range(0, factors.shape[0], chunk):
        rows = factors[start:start + chunk]
        codes = represent(torch.from_numpy(rows))
        codes = _as_codes(codes, "represent(...) output", min_rows=1)
        if codes.shape[0] != rows.shape[0] or (num_codes is not None and codes.shape[1] != num_codes):
            raise ValueError(
                f"represent must map a ({rows.shape[0]}, K) factor batch to ({rows.shape[0]}, d) codes with a fixed d, "
                f"got shape {codes.shape}"
            )
        num_codes = codes.shape[1]
        pieces.append(codes)
    return np.concatenate(pieces)


def _factorvae_votes(represent, sizes, num_votes, batch_size, rng, global_variances, active, images_per_call):
    """Vote matrix (K, num_active): for each vote, the factor held fixed and the dim of least normalised variance."""
    votes = np.zeros((sizes.size, int(active.sum())), dtype=np.int64)
    votes_per_call = max(1, images_per_call // batch_size)
    for start in range(0, num_votes, votes_per_call):
        count = min(votes_per_call, num_votes - start)
        fixed = np.empty(count, dtype=np.int64)
        batches = []
        # One vote at a time keeps the random stream independent of images_per_call.
        for vote in range(count):
            fixed[vote] = rng.integers(sizes.size)
            batch = rng.integers(0, sizes, size=(batch_size, sizes.size))
            batch[:, fixed[vote]] = batch[0, fixed[vote]]
            batches.append(batch)
        codes = _represent_in_chunks(represent, np.concatenate(batches), count * batch_size, global_variances.size)
        local = codes.reshape(count, batch_size, -1).var(axis=1, ddof=1)
        chosen = np.argmin(local[:, active] / global_variances[active], axis=1)
        np.add.at(votes, (fixed, chosen), 1)
    return votes


def factorvae_score(
    represent: Callable[[torch.Tensor], object],
    factor_sizes: Sequence[int],
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
    seed: int = 0,
    images_per_call: int = 1024,
) -> DisentanglementResult:
    """FactorVAE score: accuracy of a majority-vote classifier predicting the fixed factor from the
    code dimension whose variance (normalised by its global variance) is smallest.

    `represent` maps an int64 CPU tensor of factor classes (B, K), class k in [0, factor_sizes[k]),
    to codes (B, d) (tensor or array): the caller renders the images for those factors and encodes
    them to posterior means. It is called with at most `images_per_call` rows (rounded to whole
    votes), which changes speed, never the result. Dimensions with global std < prune_threshold
    are pruned; with none left the score is 0, as in disentanglement_lib. Chance level is about
    1 / K, not 0. score = eval accuracy; scores also hold train accuracy and the active-dim count;
    details["votes_train"] is the (K, num_active) vote matrix and details["active_dims"] the mask.
    """
    sizes = _check_factor_sizes(factor_sizes)
    for name, value in (("batch_size", batch_size), ("num_train", num_train), ("num_eval", num_eval),
                        ("num_variance_estimate", num_variance_estimate), ("images_per_call", images_per_call)):
        if value < (2 if name in ("batch_size", "num_variance_estimate") else 1):
            raise ValueError(f"{name} must be a positive count (>= 2 for variances), got {value}")
    rng = np.random.default_rng(seed)
    global_factors = rng.integers(0, sizes, size=(num_variance_estimate, sizes.size))
    global_codes = _represent_in_chunks(represent, global_factors, images_per_call, None)
    global_variances = global_codes.var(axis=0, ddof=1)
    active = np.sqrt(global_variances) >= prune_threshold
    if not active.any():
        scores = {"factorvae_eval_accuracy": 0.0, "factorvae_train_accuracy": 0.0, "factorvae_num_active_dims": 0.0}
        return DisentanglementResult(0.0, scores, {"active_dims": active, "global_variances": global_variances})
    args = (represent, sizes)
    vote_args = (batch_size, rng, global_variances, active, images_per_call)
    votes_train = _factorvae_votes(*args, num_train, *vote_args)
    classifier = np.argmax(votes_train, axis=0)
    columns = np.arange(votes_train.shape[1])
    train_accuracy = votes_train[classifier, columns].sum() / votes_train.sum()
    votes_eval = _factorvae_votes(*args, num_eval, *vote_args)
    eval_accuracy = float(votes_eval[classifier, columns].sum() / votes_eval.sum())
    scores = {
        "factorvae_eval_accuracy": eval_accuracy,
        "factorvae_train_accuracy": float(train_accuracy),
        "factorvae_num_active_dims": float(active.sum()),
    }
    details = {"votes_train": votes_train, "votes_eval": votes_eval, "active_dims": active,
               "global_variances": global_variances}
    return DisentanglementResult(eval_accuracy, scores, details)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of a (d, K) non-negative importance matrix, as disentanglement_lib.

    Disentanglement: 1 - entropy (base K) of each code's importance over factors, weighted by the
    code's share of total importance. Completeness: 1 - entropy (base d) of each factor's
    importance over codes, weighted by the factor's share.
    """
    importance = np.asarray(importance, dtype=np.float64)
    if importance.ndim != 2 or min(importance.shape) < 2 or (importance < 0).any():
        raise ValueError("importance must be a non-negative (d, K) matrix with d, K >= 2, "
                         f"got shape {importance.shape}")
    num_codes, num_factors = importance.shape
    # The 1e-11 keeps all-zero rows/columns finite (their weight is then zero anyway).
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=num_factors)
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=num_codes)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    disentanglement = float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))
    completeness = float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))
    return disentanglement, completeness


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    *,
    max_train_samples: int | None = None,
    gbt_params: dict | None = None,
    seed: int = 0,
) -> DisentanglementResult:
    """DCI disentanglement, completeness and informativeness from gradient-boosted trees.

    One sklearn GradientBoostingClassifier per factor, with sklearn's default settings as in
    disentanglement_lib (100 trees of depth 3; 10,000 train / 5,000 test points there); the
    absolute feature importances form the (d, K) importance matrix. Informativeness is the
    mean accuracy over factors (train and test). This is slow for many classes and points; the
    faster options are `max_train_samples` (a seeded random subset of the training set) and
    `gbt_params` (e.g. {"n_estimators": 20}); report which were used. score = disentanglement.
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(codes_train, factors_train, codes_test,
                                                                       factors_test)
    _check_min_columns(codes_train, "codes_train", 2, "completeness spreads importance over codes")
    _check_min_columns(factors_train, "factors_train", 2, "disentanglement spreads importance over factors")
    rng = np.random.default_rng(seed)
    if max_train_samples is not None and codes_train.shape[0] > max_train_samples:
        subset = np.sort(rng.choice(codes_train.shape[0], size=max_train_samples, replace=False))
        codes_train, factors_train = codes_train[subset], factors_train[subset]
        _check_factors_vary(factors_train, f"factors_train (subsampled to {max_train_samples} rows)")
    params = {"random_state": seed, **(gbt_params or {})}
    importance = np.zeros((codes_train.shape[1], factors_train.shape[1]))
    train_accuracy, test_accuracy = [], []
    for k in range(factors_train.shape[1]):
        model = GradientBoostingClassifier(**params).fit(codes_train, factors_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        train_accuracy.append(np.mean(model.predict(codes_train) == factors_train[:, k]))
        test_accuracy.append(np.mean(model.predict(codes_test) == factors_test[:, k]))
    disentanglement, completeness = dci_from_importance(importance)
    scores = {
        "dci_disentanglement": disentanglement,
        "dci_completeness": completeness,
        "dci_informativeness_train": float(np.mean(train_accuracy)),
        "dci_informativeness_test": float(np.mean(test_accuracy)),
    }
    details = {"importance_matrix": importance, "test_accuracy_per_factor": np.array(test_accuracy)}
    return DisentanglementResult(disentanglement, scores, details)


def sap_score(
    codes_train, factors_train, codes_test, factors_test, continuous: bool = False, *, seed: int = 0
) -> DisentanglementResult:
    """SAP: per factor, the gap between the two codes that predict it best; mean over factors.

    Discrete (default, disentanglement_lib): the (d, K) matrix holds the test accuracy of a linear
    SVM (LinearSVC, C=0.01, balanced class weights) fit on one code to predict one factor. The
    least informative code still scores about chance, so the gap's ceiling is 1 - chance
    accuracy (0.5 for binary factors), not 1. continuous=True: the matrix holds the squared
    correlation on the training set (the test set is only validated), ceiling 1.
    details["score_matrix"] is that matrix.
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(codes_train, factors_train, codes_test,
                                                                       factors_test)
    _check_min_columns(codes_train, "codes_train", 2, "the gap compares the two most predictive codes")
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    matrix = np.zeros((num_codes, num_factors))
    for j in range(num_codes):
        for k in range(num_factors):
            if continuous:
                covariance = np.cov(codes_train[:, j], factors_train[:, k], ddof=1)
                if covariance[0, 0] > 1e-12:
                    matrix[j, k] = covariance[0, 1] ** 2 / (covariance[0, 0] * covariance[1, 1])
            else:
                classifier = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                classifier.fit(codes_train[:, j:j + 1], factors_train[:, k])
                matrix[j, k] = np.mean(classifier.predict(codes_test[:, j:j + 1]) == factors_test[:, k])
    top_two = np.sort(matrix, axis=0)[::-1][:2]
    score = float(np.mean(top_two[0] - top_two[1]))
    return DisentanglementResult(score, {"sap": score}, {"score_matrix": matrix})
