"""What `vaelens compare` compares: the models named on the command line, their labels, and the one set of
evaluation images every one of them is analysed on.

A model is a vaelens run directory or `diffusers:FOLDER` (a local AutoencoderKL). What each takes is read without
loading its weights: a run's image shape from its newest checkpoint, an AutoencoderKL's input channels and
downsampling from its config.json. Models that cannot take the same images (sizes or channels differ) are
refused in one line before anything is analysed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from vaelens.analysis.target import data_config_of, diffusers_path
from vaelens.config import DataConfig
from vaelens.errors import VaelensError
from vaelens.io import read_json
from vaelens.pretrained import autoencoder_config, downsampling_of
from vaelens.runs import committed_steps
from vaelens.training.rundir import RunDirectory

LABEL = re.compile(r"[\w.+-]+")
"""What a label may hold: it names a folder of the output, a CSV row and a table column."""
DEFAULT_PRETRAINED_SIZE = 64
"""Image size for pretrained models alone without --image-size (as `vaelens analyze` uses)."""


class IncompatibleModels(VaelensError, ValueError):
    """The models cannot be analysed on the same images."""


@dataclass(frozen=True)
class ComparedModel:
    """One model of a comparison, as far as it is known before it is analysed."""

    label: str
    """Its name on the page, in the CSV and as its folder in the output."""
    kind: str
    """"run" (a vaelens run directory) or "diffusers" (a local AutoencoderKL folder)."""
    path: Path
    """The run directory or the AutoencoderKL folder, absolute."""
    channels: int
    """Image channels the model takes."""
    image_size: int | None = None
    """Side length a run takes (its training size); None for an AutoencoderKL, which takes any multiple of
    `downsampling`."""
    downsampling: int = 1
    """An AutoencoderKL's factor from image to latent side (1 for a run)."""
    data: DataConfig | None = None
    """A run's training data settings."""
    checkpoint_step: int | None = None
    """A run's newest checkpoint: the step its analysis measures."""

    @property
    def spec(self) -> str:
        """The model as the command line names it."""
        return f"diffusers:{self.path}" if self.kind == "diffusers" else str(self.path)


def _run_model(path: Path) -> ComparedModel:
    directory = RunDirectory(path)
    config = directory.read_config()
    steps = committed_steps(directory)
    channels, height, _ = read_json(directory.checkpoint_path(steps[-1]))["data"]["image_shape"]
    return ComparedModel("", "run", directory.path.resolve(), int(channels), int(height), data=config.data,
                         checkpoint_step=steps[-1])


def _diffusers_model(path: str) -> ComparedModel:
    folder = Path(path).expanduser().resolve()
    config = autoencoder_config(folder)
    return ComparedModel("", "diffusers", folder, int(config["in_channels"]),
                         downsampling=downsampling_of(config["block_out_channels"]))


def _default_label(model: ComparedModel) -> str:
    return re.sub(r"[^\w.+-]", "_", model.path.name) or model.kind


def _labelled(models: list[ComparedModel], labels: list[str] | None) -> list[ComparedModel]:
    """The models with their labels: the given ones (checked), else each folder's name made unique."""
    if labels:
        if len(labels) != len(models):
            raise ValueError(f"{len(labels)} --label for {len(models)} models; give one --label per model, in order")
        bad = [label for label in labels if not LABEL.fullmatch(label) or label in (".", "..")]
        if bad:
            raise ValueError(f"label {bad[0]!r} cannot name a folder; use letters, digits, '.', '_', '+' or '-'")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must differ: {', '.join(labels)}")
        return [dataclasses.replace(model, label=label) for model, label in zip(models, labels)]
    taken: set[str] = set()
    labelled = []
    for model in models:
        base = label = _default_label(model)
        number = 2
        while label in taken:
            label, number = f"{base}-{number}", number + 1
        taken.add(label)
        labelled.append(dataclasses.replace(model, label=label))
    return labelled


def resolve_models(specs: list[str], labels: list[str] | None = None) -> list[ComparedModel]:
    """The models named by `specs` (run directories, or diffusers:FOLDER), labelled; at least two."""
    if len(specs) < 2:
        raise ValueError(f"compare needs at least two models, got {len(specs)}; name run directories or "
                         "diffusers:FOLDER")
    models = []
    for spec in specs:
        if spec.startswith("diffusers:") or (":" in spec and not Path(spec).expanduser().exists()):
            models.append(_diffusers_model(diffusers_path(spec)))
        else:
            models.append(_run_model(Path(spec)))
    return _labelled(models, labels)


def _listing(values: dict[str, object]) -> str:
    return ", ".join(f"{label}: {value}" for label, value in values.items())


def _split_settings(config: DataConfig) -> dict:
    """What decides a data config's test split and pixels (the training subset does not)."""
    settings = {key: value for key, value in vars(config).items() if key != "subset"}
    settings["path"] = str(Path(settings["path"]).expanduser().resolve()) if settings["path"] else None
    return settings


def _check_sizes(models: list[ComparedModel], image_size: int | None) -> int:
    """The one image size every model takes: the runs' (all equal), else --image-size, else 64."""
    runs = [model for model in models if model.kind == "run"]
    channels = {model.label: model.channels for model in models}
    if len(set(channels.values())) > 1:
        raise IncompatibleModels(f"the models take images of different channels ({_listing(channels)}); compare "
                                 "analyses every model on the same images, so compare models of one kind of image")
    sizes = {model.label: model.image_size for model in runs}
    if len(set(sizes.values())) > 1:
        raise IncompatibleModels(f"the runs take images of different sizes ({_listing(sizes)} pixels); compare "
                                 "analyses every model on the same images, so compare runs of one image size")
    size = image_size or (runs[0].image_size if runs else DEFAULT_PRETRAINED_SIZE)
    if runs and size != runs[0].image_size:
        raise IncompatibleModels(f"--image-size {size}, but the runs take {runs[0].image_size}-pixel images; leave "
                                 "--image-size out or give theirs")
    for model in models:
        if size % model.downsampling:
            raise IncompatibleModels(f"{model.label} downsamples by {model.downsampling}, and image size {size} is "
                                     f"not divisible by it; choose an --image-size that every model takes")
    return size


def evaluation_data(models: list[ComparedModel], data_spec: str | None = None,
                    image_size: int | None = None) -> DataConfig:
    """The data settings of the images every model is analysed on: --data NAME[:PATH] (its split as the first
    run's settings make it; all of it for pretrained models alone) or, without it, the runs' own test split,
    which they must share. Refuses (IncompatibleModels) models that take different images, and runs whose
    training images would be among the evaluation images."""
    size = _check_sizes(models, image_size)
    runs = [model for model in models if model.kind == "run"]
    if data_spec is None:
        if not runs:
            raise ValueError("pretrained models need evaluation data: --data folder:PATH (or natural, npz:FILE, ...)")
        differing = [run.label for run in runs[1:] if _split_settings(run.data) != _split_settings(runs[0].data)]
        if differing:
            raise IncompatibleModels(f"{runs[0].label} and {differing[0]} were trained on different data or splits; "
                                     "give --data NAME[:PATH] to analyse every model on the same images")
        return DataConfig(**vars(runs[0].data))
    config = data_config_of(data_spec, size, runs[0].data if runs else None)
    # Channels follow the models (all equal by now), as `vaelens analyze` does for a pretrained model.
    config.grayscale = models[0].channels == 1
    if not runs:
        config.test_fraction = 0.0  # no model saw a vaelens split of this data: every image is evaluation data
    source = _split_settings(config)
    for run in runs:
        trained = _split_settings(run.data)
        same_source = (trained["name"], trained["path"]) == (source["name"], source["path"])
        if same_source and (trained["test_fraction"], trained["seed"]) != (source["test_fraction"], source["seed"]):
            raise IncompatibleModels(f"{run.label} was trained on {config.name} with another split (test_fraction "
                                     f"{trained['test_fraction']}, seed {trained['seed']}) than {runs[0].label}: its "
                                     "training images would be among the evaluation images; compare runs of one split")
    return config


def check_image_shape(models: list[ComparedModel], image_shape: tuple[int, int, int], what: str) -> None:
    """Refuse (IncompatibleModels) a model that does not take the evaluation images (`what` names them)."""
    channels, height, width = image_shape
    for model in models:
        size = model.image_size or height
        if (model.channels, size, size) != (channels, height, width):
            raise IncompatibleModels(f"{what} holds {channels} x {height} x {width} images, but {model.label} takes "
                                     f"{model.channels} x {size} x {size}; give --data and --image-size that every "
                                     "model takes")
