"""`vaelens demo`: the study in miniature on procedural dSprites, a few minutes on two CPU cores.

Pointwise against pointwise + perceptual under the calibrated convex convention (w_p = "auto", so the
mix keeps the pixel term's curvature and only redistributes it), three betas chosen so that no model
collapses, three seeds, small models and a small feature network fitted for the demo on the same
images. Each run is analysed with the mechanistic probe (the linear theory's prediction of every
posterior variance beside the measured one) and the claims are tested at matched beta and at matched
rate. A few CPU minutes do not take the runs to their plateau, so the claims keep the runs still improving
(which `vaelens reproduce` leaves out) and say so: the verdicts are a smoke test of the pipeline, whatever
these runs give (nothing is picked to make a row decisive), and `vaelens reproduce` is the real study.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean

from vaelens.config import DataConfig
from vaelens.features.fit import fit_feature_network
from vaelens.features.store import save_feature_network
from vaelens.report import claims_text
from vaelens.study import StudyScale, run_study, study_spec
from vaelens.training.sweepdir import RunRecord, SweepDirectory

# An MLP, not conv64: in a CPU minute conv64 on Bernoulli dSprites is still in its collapsed phase
# (distortion near the mean image's at every beta, rate 0.02-0.04 nats at beta 4 after 500 steps), while
# the MLP learns (distortion about a fifth of the mean image's) and its rate falls smoothly with beta. The
# beta grid spans a factor 8 so that the pointwise and the convex +perceptual rate ranges overlap, which
# the matched-rate comparison needs. Wall times: BENCHMARKS.md.
DEMO_SCALE = StudyScale(steps=300, subset=4096, betas=(0.5, 1.4, 4.0), seeds=(0, 1, 2), channels=16, hidden_dim=256,
                        batch_size=64, analysis_images=1024, disc_channels=16, disc_layers=2,
                        distortion_images=128, disentanglement=False)
DEMO_LR = 1e-3
"""Adam learning rate of the demo's models (the preset's 5e-4 is for 20,000-step runs)."""
DEMO_PROBE_IMAGES = 64
"""Images each demo analysis runs the mechanistic probe on."""
DEMO_CONVENTION = "convex"
"""The neural runs' convention: calibrated convex, the normalised mix (its baseline is additive pointwise)."""
DEMO_FEATURE_STEPS = 150
"""Steps of the demo's supervised feature network (the built-in recipe takes 1500)."""
DEMO_FEATURE_SUBSET = 4096
"""dSprites images the demo's feature network is fitted on."""
DEMO_FEATURE_WIDTHS = (8, 16, 32, 32)
"""Stage widths of the demo's feature network: a quarter of the built-in ones, so that fitting it
and using it in every training step stays within the demo's budget."""


def demo_spec(feature_network: Path, steps: int | None = None) -> dict:
    """The demo's sweep spec: dSprites, pointwise vs +perceptual (features from `feature_network`)."""
    scale = DEMO_SCALE if steps is None else StudyScale(**{**DEMO_SCALE.__dict__, "steps": steps})
    if scale.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {scale.steps}")
    spec = study_spec("dsprites", scale, families=("pointwise", "+perceptual"),
                      perceptual=f"features:{Path(feature_network).resolve()}")
    variants = spec["zip"][0]
    # The pointwise baseline (additive) and the calibrated convex +perceptual runs.
    kept = [i for i, (convention, perceptual) in enumerate(zip(variants["loss.convention"],
                                                               variants["loss.perceptual"]))
            if (perceptual is None and convention == "additive") or convention == DEMO_CONVENTION]
    spec["zip"] = [{key: [values[i] for i in kept] for key, values in variants.items()}]
    spec["name"] = "demo"
    spec["overrides"].update({"model.name": "mlp", "model.latent_dim": 6, "train.lr": DEMO_LR})
    spec["analysis"].update(probe=True, probe_images=DEMO_PROBE_IMAGES)
    return spec


def fit_demo_features(path: Path, progress: bool = True) -> Path:
    """A small supervised dSprites feature network at `path` (reused when already there)."""
    if path.is_file():
        return path
    network, metadata = fit_feature_network(DataConfig(name="dsprites", subset=DEMO_FEATURE_SUBSET), "supervised",
                                            DEMO_FEATURE_STEPS, batch_size=32, widths=DEMO_FEATURE_WIDTHS,
                                            eval_images=256, progress=progress)
    metadata["recipe"] = {"name": "demo", "summary": f"supervised dSprites factors, {DEMO_FEATURE_STEPS} steps "
                                                     f"on {DEMO_FEATURE_SUBSET} images (vaelens demo)"}
    return save_feature_network(network, metadata, path)


def run_demo(out, steps: int | None = None, progress: bool = True) -> Path:
    """Fit the demo's feature network, run its sweep into `out`, build the report; print the claims
    table and the report's path, and return the path."""
    out = Path(out).expanduser()
    features = fit_demo_features(out / "features" / "dsprites-demo.safetensors", progress)
    # A few CPU minutes do not reach the 2% plateau (the check finds every run still improving), and leaving
    # them out would leave no claim to show: the demo keeps them, and its claims say they are a smoke test.
    report = run_study({"dsprites": demo_spec(features, steps)}, out, progress=progress,
                       leave_out_still_improving=False)
    print(runs_table(SweepDirectory(out).load().runs))
    print(claims_text(report.claims))
    print(f"report: {report.page}")
    return report.page


def runs_table(runs: list[RunRecord]) -> str:
    """Per family and beta: mean rate and I(x; z) over seeds (nats; is any model collapsed?), the calibrated
    w_p, and the probe's agreement between predicted and measured posterior variances."""
    groups = defaultdict(list)
    for record in runs:
        if record.usable:
            groups[(record.loss_family, record.convention, record.beta)].append(record)
    lines = ["family       convention  beta  rate (nats)  I(x;z) (nats)  w_p        probe r (log var)  runs"]
    for (family, convention, beta), records in sorted(groups.items(), key=lambda item: (item[0][0] != "pointwise",
                                                                                         item[0][2])):
        def average(key):
            values = [value for value in (record.metric(key) for record in records) if value is not None]
            return f"{mean(values):.3g}" if values else "n/a"

        weight = records[0].summary.get("objective", {}).get("perceptual_weight")
        saturated = any(record.analysis.get("mutual_information_saturated") for record in records)
        information = average("mutual_information") + ("*" if saturated else "")
        lines.append(f"{family:<12} {convention:<11} {beta:<5g} {average('rate'):<12} "
                     f"{information:<14} {'-' if weight is None else f'{weight:.4g}':<10} "
                     f"{average('probe.pearson_log'):<18} {len(records)}")
    lines.append("* within 0.5 nats of log N (N = images analysed): a floor on I(x; z), not an estimate")
    return "\n".join(lines)
