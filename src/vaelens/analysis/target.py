"""What `vaelens analyze` analyses: a run directory, or a pretrained model on data named on the command line."""

from __future__ import annotations

from pathlib import Path

from vaelens.analysis.run import analyze, write_analysis
from vaelens.devices import resolve_device


def _data_config(spec: str, image_size: int, base=None):
    """DataConfig of --data NAME[:PATH] at `image_size`, other fields from `base` (or the defaults)."""
    from vaelens.config import DataConfig

    name, _, path = spec.partition(":")
    config = DataConfig(**vars(base)) if base is not None else DataConfig()
    config.name, config.path, config.image_size = name, path or None, image_size
    return config


def analyze_target(run_dir=None, *, model_spec: str | None = None, data_spec: str | None = None,
                   image_size: int | None = None, out=None, max_images: int | None = 5000, quick: bool = False,
                   device: str = "auto", progress: bool = True) -> tuple[Path, dict]:
    """Analyse a run directory, or a pretrained model given as diffusers:PATH on data NAME[:PATH]."""
    from vaelens.data import load_dataset

    device = resolve_device(device)
    if (run_dir is None) == (model_spec is None):
        raise ValueError("give either a run directory or --model diffusers:PATH (not both)")
    if run_dir is not None:
        from vaelens.runs import load_run

        loaded = load_run(run_dir, device)
        data_config = loaded.config.data
        if data_spec:
            data_config = _data_config(data_spec, image_size or data_config.image_size, data_config)
        model, objective, folder = loaded.model, loaded.objective, Path(out or run_dir)
    else:
        kind, _, path = model_spec.partition(":")
        if kind != "diffusers" or not path:
            raise ValueError(f"unknown --model '{model_spec}'; use diffusers:PATH to a local AutoencoderKL folder")
        if not data_spec:
            raise ValueError("a pretrained model needs evaluation data: --data folder:PATH (or natural, npz:FILE, ...)")
        if out is None:
            raise ValueError("a pretrained model has no run directory: give --out FOLDER for analysis.json")
        from vaelens.pretrained import load_diffusers_autoencoder

        data_config = _data_config(data_spec, image_size or 64)
        model = load_diffusers_autoencoder(path, data_config.image_size, device)
        # The model never saw a vaelens split of this data, so every image is evaluation data;
        # grayscale follows the model's input channels.
        data_config.test_fraction, data_config.grayscale = 0.0, model.image_shape[0] == 1
        objective, folder = None, Path(out)
    data = load_dataset(data_config, split="test")
    results = analyze(model, data, objective=objective, max_images=max_images, quick=quick, device=device,
                      progress=progress)
    return write_analysis(results, folder, model, objective, data), results
