"""`vaelens demo`: the study in miniature on procedural dSprites, a few minutes on two CPU cores.

Pointwise against pointwise + perceptual (additive convention), two betas, three seeds, small models
and a small feature network fitted for the demo on the same images. The numbers say what the
tiny budget can say: the claims table usually reads `inconclusive` for some claims at this size,
and `vaelens reproduce` is the real study.
"""

from __future__ import annotations

from pathlib import Path

from vaelens.study import StudyScale, study_spec

# Sized to leave most of the five-minute budget on two CPU cores free for slower machines (wall
# times: BENCHMARKS.md); 120 steps of 16 images (the first design) trained too little for the claims
# table to mean anything.
DEMO_SCALE = StudyScale(steps=500, subset=2048, betas=(1.0, 4.0), seeds=(0, 1, 2), channels=16, hidden_dim=64,
                        batch_size=32, analysis_images=1024, disc_channels=16, disc_layers=2,
                        distortion_images=128, disentanglement=False)
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
    additive = [i for i, convention in enumerate(variants["loss.convention"]) if convention == "additive"]
    spec["zip"] = [{key: [values[i] for i in additive] for key, values in variants.items()}]
    spec["name"] = "demo"
    spec["overrides"]["model.latent_dim"] = 6
    return spec


def fit_demo_features(path: Path, progress: bool = True) -> Path:
    """A small supervised dSprites feature network at `path` (reused when already there)."""
    from vaelens.config import DataConfig
    from vaelens.features.fit import fit_feature_network
    from vaelens.features.store import save_feature_network

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
    from vaelens.io import read_json
    from vaelens.report import format_claims_table
    from vaelens.study import run_study

    out = Path(out).expanduser()
    features = fit_demo_features(out / "features" / "dsprites-demo.safetensors", progress)
    report = run_study({"dsprites": demo_spec(features, steps)}, out, progress=progress)
    print(format_claims_table(read_json(out / "claims.json")))
    print(f"report: {report}")
    return report
