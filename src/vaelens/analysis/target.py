"""What `vaelens analyze` analyses: a run directory, or a pretrained model on data named on the command line."""

from __future__ import annotations

from pathlib import Path

from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.run import analyze, write_analysis
from vaelens.analysis.sample_size import DEFAULT_IMAGES
from vaelens.analysis.saved_run import analyze_run
from vaelens.config import DataConfig
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.pretrained import load_diffusers_autoencoder
from vaelens.training.rundir import RunDirectory


def data_config_of(spec: str, image_size: int, base=None) -> DataConfig:
    """DataConfig of --data NAME[:PATH] at `image_size`, other fields from `base` (or the defaults)."""
    name, _, path = spec.partition(":")
    config = DataConfig(**vars(base)) if base is not None else DataConfig()
    config.name, config.path, config.image_size = name, path or None, image_size
    return config


def analyze_target(run_dir=None, *, model_spec: str | None = None, data_spec: str | None = None,
                   image_size: int | None = None, out=None, max_images: int | str | None = None, quick: bool = False,
                   device: str = "auto", progress: bool = True, allow_diverged: bool = False,
                   disentanglement: bool = True, probe: bool = False) -> tuple[Path, dict]:
    """Analyse a run directory (through `analyze_run`, as sweeps do), or a pretrained model given as
    diffusers:PATH on data NAME[:PATH]. `max_images`: a count or "auto" (None: DEFAULT_IMAGES); `probe` runs the
    mechanistic probe (a pretrained model has no training objective, so there it is recorded as skipped)."""
    max_images = DEFAULT_IMAGES if max_images is None else max_images
    if (run_dir is None) == (model_spec is None):
        raise ValueError("give either a run directory or --model diffusers:PATH (not both)")
    if run_dir is not None:
        data_config = None
        if data_spec:
            base = RunDirectory(run_dir).read_config().data
            data_config = data_config_of(data_spec, image_size or base.image_size, base)
        options = AnalysisOptions(images=max_images, quick=quick, disentanglement=disentanglement, probe=probe)
        return analyze_run(run_dir, options, data_config=data_config, out=out, device=device, progress=progress,
                           allow_diverged=allow_diverged)
    return _analyze_pretrained(model_spec, data_spec, image_size, out, max_images, quick, resolve_device(device),
                               progress, disentanglement, probe)


def _analyze_pretrained(model_spec: str, data_spec: str | None, image_size: int | None, out, max_images, quick: bool,
                        device, progress: bool, disentanglement: bool, probe: bool) -> tuple[Path, dict]:
    """A diffusers AutoencoderKL on every image of the given data (none of it was its training split)."""
    path = diffusers_path(model_spec)
    if not data_spec:
        raise ValueError("a pretrained model needs evaluation data: --data folder:PATH (or natural, npz:FILE, ...)")
    if out is None:
        raise ValueError("a pretrained model has no run directory: give --out FOLDER for analysis.json")
    data_config = data_config_of(data_spec, image_size or 64)
    model = load_diffusers_autoencoder(path, data_config.image_size, device)
    # The model never saw a vaelens split of this data, so every image is evaluation data;
    # grayscale follows the model's input channels.
    data_config.test_fraction, data_config.grayscale = 0.0, model.image_shape[0] == 1
    options = AnalysisOptions(images=max_images, quick=quick, disentanglement=disentanglement, probe=probe)
    return analyze_pretrained(model, data_config, out, options, device=device, progress=progress)


def diffusers_path(model_spec: str) -> str:
    """The folder of a --model diffusers:PATH; a ValueError for any other kind of model."""
    kind, _, path = model_spec.partition(":")
    if kind != "diffusers" or not path:
        raise ValueError(f"unknown --model '{model_spec}'; use diffusers:PATH to a local AutoencoderKL folder")
    return path


def analyze_pretrained(model, data_config: DataConfig, out, options: AnalysisOptions | None = None, *,
                       device="cpu", progress: bool = True) -> tuple[Path, dict]:
    """Analyse a loaded pretrained model (a DiffusersAutoencoder, say) on the test split of `data_config` (all of
    it where test_fraction is 0) and write analysis.json + figures into `out`. Returns (path, results)."""
    options = (options or AnalysisOptions()).check()
    data = load_dataset(data_config, split="test")
    results = analyze(model, data, objective=None, max_images=options.images,
                      distortion_images=options.distortion_images, disentanglement=options.disentanglement,
                      quick=options.quick, seed=options.seed, device=device, progress=progress, probe=options.probe,
                      probe_images=options.probe_images)
    return write_analysis(results, Path(out), model, None, data), results
