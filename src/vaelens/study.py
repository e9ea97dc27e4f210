"""`vaelens reproduce`: the study of the paper's claims (docs/science.md) as sweeps, then claims.json and report.html.

Losses {pointwise, +perceptual, +adversarial, +both} x a beta grid x seeds x weighting conventions
(additive and convex everywhere; latent-diffusion's ldm on natural patches, the SD-style setting it
was made for) on dSprites and natural photo patches. Each data set is one sweep under
OUT/<data set>/; OUT/sweep.json indexes all their runs, so OUT is itself a sweep directory that
`vaelens report OUT` can rebuild.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from vaelens.analysis.plateau import check_runs
from vaelens.claims_design import DEFAULT_DESIGN, ClaimsDesign, Setting, validated
from vaelens.devices import resolve_device
from vaelens.features import resolve_feature_network
from vaelens.locks import folder_lock
from vaelens.losses.families import split_convention_label
from vaelens.report import BuiltReport, build_report
from vaelens.report.pairing import baseline_convention
from vaelens.sweep import run_sweep
from vaelens.training.sweepdir import SweepDirectory, SweepIndex

FAMILIES = ("pointwise", "+perceptual", "+adversarial", "+both")


@dataclass(frozen=True)
class StudyScale:
    """How big each run of the study is."""

    steps: int | dict
    """Training steps per run, or data set -> that."""
    subset: int | None | dict
    """Training images (None: the whole data set), or data set -> that."""
    betas: tuple[float, ...]
    """The beta grid."""
    seeds: tuple[int, ...]
    """Seeds per setting (the claims' intervals are over these)."""
    channels: int
    """Convolution channels of conv64."""
    hidden_dim: int
    """Fully connected width of conv64."""
    batch_size: int
    """Images per step."""
    analysis_images: int
    """Images each analysis encodes."""
    disc_channels: int
    """PatchGAN ndf."""
    disc_layers: int
    """PatchGAN stride-2 layers."""
    distortion_images: int = 512
    """Encoded images whose reconstructions each analysis scores."""
    disentanglement: bool = True
    """Score disentanglement in each analysis (the claims do not use it, and FactorVAE's votes render
    ~10^5 dSprites per run, more than a CPU-sized study can spend)."""
    model: str | None = None
    """Model architecture (vaelens.models registry name); None: the preset's (conv64)."""
    latent_dim: int | None = None
    """Latent units; None: the preset's."""
    lr: float | None = None
    """Adam learning rate; None: the preset's."""
    natural_image_size: int = 64
    """Side of the natural photo patches (64 or 32; dSprites is always 64)."""
    log_records: int = 20
    """metrics.jsonl records per run. The convergence figure compares window means of the records near
    80% and near 100% of the steps, so more records make it less noisy."""
    variants: dict | None = None
    """Data set -> the (convention, family) pairs studied, a cut of every pair; None: every pair.
    Conventions: those of DATASETS, plus "additive+learned-sigma" (the SD-style learned-sigma Gaussian)."""
    probe_images: int | None = None
    """Images each analysis runs the mechanistic probe on; None: no probe."""
    lr_schedule: str | None = None
    """train.lr_schedule (constant | cosine); None: the preset's (constant)."""
    family_betas: dict | None = None
    """Data set -> {family -> the betas (a subset of `betas`) its runs use}; families not listed, and every
    family when None, run at every beta of `betas`."""
    variant_steps: dict | None = None
    """Data set -> {(convention label, family) -> training steps} for the pairs that need longer than
    `steps` to reach the plateau; the pairs not listed, and every pair when None, train for `steps`."""
    perceptual: str | dict | None = None
    """loss.perceptual of the +perceptual and +both runs (e.g. effnet-lite0, the ImageNet network), or data set
    -> that; None: the data set's own fitted network (DATASETS' features), as the published study used."""
    rate_windows: dict | None = None
    """Data set -> (low, high) rate in nats over which the C4 (matched-rate) rows average, declared before the
    study runs (vaelens.claims_design); None, or a data set not listed: the range every seed's curves cover."""

    def for_dataset(self, name: str, dataset: str):
        """The value of field `name` (steps, subset) for `dataset`: the field itself, or its entry for it."""
        value = getattr(self, name)
        return value.get(dataset) if isinstance(value, dict) else value


SCALES = {
    # Sized for 2 CPU cores and a 30-minute budget (108 runs; wall times in BENCHMARKS.md). Narrow models, two
    # betas: its verdicts are a smoke test of the pipeline, not the study.
    # Its perceptual term is the ImageNet network (docs/perceptual.md), which needs no fitting.
    "quick": StudyScale(steps=160, subset=1024, betas=(1.0, 4.0), seeds=(0, 1, 2), channels=8, hidden_dim=32,
                        batch_size=32, analysis_images=256, disc_channels=16, disc_layers=2,
                        distortion_images=128, disentanglement=False, perceptual="effnet-lite0"),
    # The study STUDY.md publishes, about 2 h 20 min on two CPU cores. Its design and every cut (MLP models,
    # 32 x 32 natural patches, which settings run at which betas and for how long) were chosen by pilots judged by
    # the paired plateau check: STUDY.md ("Design, and what was cut to fit two cores" and "Did the models
    # converge?") gives each choice with the measurements behind it. It keeps the self-fitted networks it was
    # published with, so its numbers stay reproducible.
    "standard": StudyScale(steps={"dsprites": 2400, "natural": 2000}, subset={"dsprites": 20_000, "natural": None},
                           betas=(0.5, 2.0, 8.0, 32.0), seeds=(0, 1, 2, 3, 4), channels=16, hidden_dim=256,
                           batch_size=32, analysis_images=2048,
                           disc_channels=16, disc_layers=2, distortion_images=256, disentanglement=False,
                           model="mlp", latent_dim=10, lr=2e-3, lr_schedule="cosine", natural_image_size=32,
                           log_records=100, probe_images=16,
                           family_betas={"dsprites": {"+perceptual": (8.0, 32.0)},
                                         "natural": {"+adversarial": (2.0, 8.0), "+both": (2.0, 8.0)}},
                           variant_steps={"natural": {("additive+learned-sigma", "pointwise"): 4000,
                                                      ("additive+learned-sigma", "+perceptual"): 4000}},
                           # the windows the previous run of this design covered in every seed (C4 rows)
                           rate_windows={"dsprites": (10.0, 14.0), "natural": (20.0, 50.0)},
                           variants={"dsprites": (("additive", "pointwise"), ("additive", "+perceptual")),
                                     "natural": (("additive", "pointwise"), ("additive", "+perceptual"),
                                                 ("additive", "+adversarial"), ("additive", "+both"),
                                                 ("convex", "+perceptual"), ("ldm", "pointwise"),
                                                 ("ldm", "+perceptual"), ("additive+learned-sigma", "pointwise"),
                                                 ("additive+learned-sigma", "+perceptual"))}),
    # For a GPU: the presets' architectures and step counts, a five-point beta grid.
    "full": StudyScale(steps=20000, subset=None, betas=(0.25, 0.5, 1.0, 2.0, 4.0), seeds=(0, 1, 2), channels=32,
                       hidden_dim=256, batch_size=64, analysis_images=5000, disc_channels=64, disc_layers=3,
                       perceptual="effnet-lite0"),
}

DATASETS = {
    "dsprites": {"preset": "dsprites-bvae", "features": "dsprites-supervised", "perceptual_weight": "auto",
                 "conventions": ("additive", "convex")},
    "natural": {"preset": "natural-bvae", "features": "natural-denoising", "perceptual_weight": "auto",
                "conventions": ("additive", "convex", "ldm")},
}
"""Per data set: preset, the project's own feature network for the perceptual term, w_p and the conventions
studied. w_p is calibrated ("auto": w_p * d_perc gets the pixel term's average curvature; a raw per-image
distance is orders of magnitude below a pixel sum of 4096-12288 terms), so the convex mix keeps the total
curvature. The ldm convention adds w_p * d_perc to every pixel under its learned s, so it takes
latent-diffusion's own w_p instead."""

LDM_PERCEPTUAL_WEIGHT = 1.0
"""w_p under the ldm convention: latent-diffusion's default (its per-image LPIPS broadcast to each pixel)."""

DISC_WEIGHT = 0.5
"""disc_weight of adversarial runs (times the adaptive weight, as in latent diffusion)."""


def study_pairs(dataset: str, families=FAMILIES, cut: dict | None = None) -> list[tuple[str, str]]:
    """The (convention label, family) pairs of one data set: every convention x family with the convex
    convention's pointwise form left out (its a = 0 end is the additive pointwise run, its baseline), in
    that order; `cut` (a scale's `variants`) keeps only the pairs it lists for this data set."""
    unknown = set(families) - set(FAMILIES)
    if unknown or "pointwise" not in families:
        raise ValueError(f"families must include 'pointwise' and come from {', '.join(FAMILIES)}; got {families}")
    conventions = DATASETS[dataset]["conventions"]
    if cut is not None:
        conventions = tuple(dict.fromkeys(conventions + tuple(convention for convention, _ in cut.get(dataset, ()))))
    pairs = [(convention, family) for convention in conventions for family in families
             if not (family == "pointwise" and convention == "convex")]
    if cut is None:
        return pairs
    kept = [pair for pair in pairs if pair in set(map(tuple, cut.get(dataset, ())))]
    baselines = {convention for convention, family in kept if family == "pointwise"}
    orphans = [pair for pair in kept if baseline_convention(pair[0]) not in baselines]
    if orphans:
        raise ValueError(f"{dataset}: the cut keeps {orphans} without their pointwise baseline")
    return kept


def loss_variants(dataset: str, families=FAMILIES, perceptual: str | None = None, cut: dict | None = None
                  ) -> dict[str, list]:
    """The zipped loss axis of one data set (`study_pairs`): every (convention, family) with a neural term,
    plus the pointwise baselines (additive; ldm's own |x - x̂| baseline where ldm is studied; the learned-sigma
    Gaussian's own where it is studied). The convex mix has no pointwise-only form, its baseline is the
    additive pointwise run."""
    settings = DATASETS[dataset]
    perceptual = perceptual or f"features:{settings['features']}"
    axis: dict[str, list] = {"loss.convention": [], "loss.perceptual": [], "loss.perceptual_weight": [],
                             "loss.disc_weight": [], "loss.likelihood": []}
    base_likelihood = "bernoulli" if dataset == "dsprites" else "gaussian"
    for label, family in study_pairs(dataset, families, cut):
        convention, learned_sigma = split_convention_label(label)
        axis["loss.convention"].append(convention)
        axis["loss.perceptual"].append(perceptual if family in ("+perceptual", "+both") else None)
        axis["loss.perceptual_weight"].append(LDM_PERCEPTUAL_WEIGHT if convention == "ldm"
                                              else settings["perceptual_weight"])
        axis["loss.disc_weight"].append(DISC_WEIGHT if family in ("+adversarial", "+both") else 0.0)
        axis["loss.likelihood"].append("laplace" if convention == "ldm" else
                                       "gaussian_learned" if learned_sigma else base_likelihood)
    return axis


def step_overrides(steps: int, log_records: int) -> dict:
    """The settings that follow a run's length: a checkpoint every fifth of the run keeps one at 0.8 T beside
    the final one (the newest two are kept), so the paired plateau check (vaelens.analysis.plateau) judges
    exactly the last 20%; `log_records` metrics records; the discriminator starts at T / 4."""
    return {"train.steps": steps, "train.checkpoint_every": max(1, steps // 5),
            "train.log_every": max(1, steps // log_records), "loss.disc_start": steps // 4}


def _with_variant_steps(dataset: str, scale: StudyScale, zipped: dict, entry_pairs: list[tuple[str, str]]) -> dict:
    """`zipped` plus the step settings of each entry when the scale gives some pair of `dataset` its own length."""
    own = (scale.variant_steps or {}).get(dataset)
    if not own:
        return zipped
    unknown = sorted(set(map(tuple, own)) - set(entry_pairs))
    if unknown:
        raise ValueError(f"{dataset}: variant_steps names {unknown}, which the study does not run; "
                         f"its pairs: {sorted(set(entry_pairs))}")
    default = scale.for_dataset("steps", dataset)
    steps_axis: dict[str, list] = {}
    for pair in entry_pairs:
        for key, value in step_overrides(own.get(pair, default), scale.log_records).items():
            steps_axis.setdefault(key, []).append(value)
    return {**zipped, **steps_axis}


def beta_axes(dataset: str, scale: StudyScale, families=FAMILIES, perceptual: str | None = None
              ) -> tuple[dict, dict]:
    """(grid, zipped loss axis) of one data set: beta on the grid when every family runs at every beta;
    otherwise beta joins the zipped axis, each (convention, family) repeated at its family's betas. Pairs with
    their own `variant_steps` carry their step settings in the zipped axis too."""
    variants = loss_variants(dataset, families, perceptual, scale.variants)
    pairs = study_pairs(dataset, families, scale.variants)
    family_betas = (scale.family_betas or {}).get(dataset)
    if not family_betas:
        return {"loss.beta": list(scale.betas)}, _with_variant_steps(dataset, scale, variants, pairs)
    unknown = {family: betas for family, betas in family_betas.items()
               if family not in FAMILIES or not set(betas) <= set(scale.betas)}
    if unknown:
        raise ValueError(f"{dataset}: family_betas {unknown}: families must come from {', '.join(FAMILIES)} and "
                         f"their betas from the scale's grid {list(scale.betas)}")
    zipped: dict[str, list] = {key: [] for key in (*variants, "loss.beta")}
    entry_pairs = []
    for index, pair in enumerate(pairs):
        for beta in family_betas.get(pair[1], scale.betas):
            for key, values in variants.items():
                zipped[key].append(values[index])
            zipped["loss.beta"].append(beta)
            entry_pairs.append(pair)
    return {}, _with_variant_steps(dataset, scale, zipped, entry_pairs)


def dataset_label(dataset: str, scale: StudyScale) -> str:
    """How the claims name a study data set: name and image side (natural-32)."""
    return f"{dataset}-{scale.natural_image_size if dataset == 'natural' else 64}"


def study_design(scale: StudyScale) -> ClaimsDesign:
    """The study's claims design, declared before it runs: the default endpoints and bounds, the primary family on
    natural patches with the additive +perceptual loss (the SD-style setting the claims are about), the scale's rate
    windows."""
    windows = {dataset_label(dataset, scale): tuple(window) for dataset, window in (scale.rate_windows or {}).items()}
    return validated(dataclasses.replace(DEFAULT_DESIGN, primary_setting=Setting(dataset_label("natural", scale)),
                                         rate_windows=windows, declared_by="the study spec (vaelens.study)"))


def study_spec(dataset: str, scale: StudyScale, families=FAMILIES, perceptual: str | None = None) -> dict:
    """The sweep spec (vaelens.sweep format) of one data set of the study."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown study data set '{dataset}'; available: {', '.join(DATASETS)}")
    settings = DATASETS[dataset]
    subset, steps = scale.for_dataset("subset", dataset), scale.for_dataset("steps", dataset)
    overrides = {"data.subset": subset, "model.channels": scale.channels,
                 "model.hidden_dim": scale.hidden_dim, "train.batch_size": scale.batch_size,
                 "loss.disc_channels": scale.disc_channels, "loss.disc_layers": scale.disc_layers,
                 **step_overrides(steps, scale.log_records)}
    optional = {"model.name": scale.model, "model.latent_dim": scale.latent_dim, "train.lr": scale.lr,
                "train.lr_schedule": scale.lr_schedule}
    overrides.update({key: value for key, value in optional.items() if value is not None})
    if dataset == "natural" and scale.natural_image_size != 64:
        overrides["data.image_size"] = scale.natural_image_size
    grid, variants = beta_axes(dataset, scale, families, perceptual or scale.for_dataset("perceptual", dataset))
    return {"name": f"study-{dataset}", "preset": settings["preset"], "overrides": overrides,
            "grid": {**grid, "train.seed": list(scale.seeds)}, "zip": [variants],
            "analyze": True, "analysis_images": scale.analysis_images, "analysis_quick": True,
            "claims": study_design(scale).to_json(),
            "analysis": {"distortion_images": scale.distortion_images if scale.analysis_images == "auto"
                         else min(scale.distortion_images, scale.analysis_images),
                         "disentanglement": scale.disentanglement,
                         **({"probe": True, "probe_images": scale.probe_images} if scale.probe_images else {})}}


def study_specs(scale_name: str, datasets=tuple(DATASETS), families=FAMILIES) -> dict[str, dict]:
    """Data set -> sweep spec for `vaelens reproduce --quick|--full`."""
    if scale_name not in SCALES:
        raise ValueError(f"unknown study scale '{scale_name}'; available: {', '.join(SCALES)}")
    return {dataset: study_spec(dataset, SCALES[scale_name], families) for dataset in datasets}


def write_index(out_dir: Path, sweep_dirs: dict[str, Path], specs: dict[str, dict],
                leave_out_still_improving: bool = True) -> Path:
    """OUT/sweep.json listing the runs of every sub-sweep with paths relative to OUT, how the claims treat runs
    still improving and the claims' design the specs declare (vaelens.report.claims; the report reads both, so
    `vaelens report OUT` agrees)."""
    runs = []
    for name, sweep_dir in sweep_dirs.items():
        for entry in SweepDirectory(sweep_dir).read_index().runs:
            runs.append(dataclasses.replace(entry, run_id=f"{name}/{entry.run_id}",
                                            dir=str((sweep_dir / entry.dir).relative_to(out_dir))))
    designs = [spec["claims"] for spec in specs.values() if spec.get("claims")]
    study = SweepDirectory(out_dir)
    study.write_index(SweepIndex({"study": specs}, runs, leave_out_still_improving, designs[0] if designs else None))
    return study.index_path


def _ensure_feature_networks(specs: dict[str, dict], progress: bool) -> None:
    """Fit the study's feature networks once, before any run asks for them (runs may be in parallel)."""
    names = {value.split(":", 1)[1] for spec in specs.values() for value in spec["zip"][0]["loss.perceptual"]
             if value and value.startswith("features:")}
    for name in sorted(names):
        if not name.endswith(".safetensors"):
            resolve_feature_network(name, progress=progress)


def run_study(specs: dict[str, dict], out_dir, *, executor: str = "local", progress: bool = True,
              leave_out_still_improving: bool = True, **executor_options) -> BuiltReport:
    """Run each data set's sweep into OUT/<data set> (each run analysed as its spec says), index them, check
    each run's plateau (plateau.json) and build OUT/report.html + claims.json, whose verdicts leave out the
    runs still improving unless `leave_out_still_improving` is False (a demonstration too short to converge).
    `executor_options` go to the executor (e.g. workers=2)."""
    out_dir = Path(out_dir).expanduser()
    _ensure_feature_networks(specs, progress)
    sweep_dirs = {dataset: out_dir / dataset for dataset in specs}
    with folder_lock(out_dir, "a study"):
        for dataset, spec in specs.items():
            run_sweep(spec, sweep_dirs[dataset], executor=executor, progress=progress, **executor_options)
        write_index(out_dir, sweep_dirs, specs, leave_out_still_improving)
        check_runs(out_dir, device=resolve_device("auto"), progress=progress)
        return build_report(out_dir, progress=progress)


def reproduce(scale_name: str, out_dir, *, executor: str = "local", progress: bool = True,
              **executor_options) -> BuiltReport:
    """`vaelens reproduce`: the whole study at `scale_name` (quick | standard | full); returns what the report
    wrote and the claims."""
    return run_study(study_specs(scale_name), out_dir, executor=executor, progress=progress, **executor_options)
