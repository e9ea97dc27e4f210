"""Checkpoints as safetensors (every tensor) + JSON (everything else). Never pickle.

A checkpoint is `step_<N>.safetensors` plus `step_<N>.json`; the JSON is written last and holds
the SHA-256 of the tensor file, so it is the commit marker: a checkpoint without its JSON, or whose
tensors do not match the recorded hash, is incomplete or corrupt and is reported as such. The
tensor file is fsynced and its rename made durable (folder fsynced) before the JSON is written, so
after a power cut a JSON never names tensors that are not on disk; pruning deletes a JSON before
its tensors for the same reason.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaelens.errors import VaelensError
from vaelens.io import atomic_path, atomic_write_json, os_error_of, read_json

FORMAT = "vaelens-checkpoint-1"
REQUIRED_KEYS = ("step", "sha256", "optimizers", "modules", "generators")
"""What every checkpoint's JSON holds (save_checkpoint writes them all); one missing means a damaged file."""


class CheckpointError(VaelensError, RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def optimizer_to_flat(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state_dict into named tensors and a JSON-friendly remainder."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(prefix: str, tensors: dict, meta: dict) -> dict:
    """Rebuild an optimizer state_dict from `optimizer_to_flat`'s two halves."""
    state: dict[int, dict] = {}
    marker = f"{prefix}.state."
    for key, value in tensors.items():
        if key.startswith(marker):
            index, name = key[len(marker):].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
              for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(folder: Path, step: int, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], generators: dict[str, torch.Generator],
                    extra: dict | None = None, keep: int = 2) -> Path:
    """Write checkpoint `step` into `folder` atomically and prune all but the newest `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors, optimizer_meta = {}, {}
    for name, module in modules.items():
        tensors.update({f"{name}.{key}": value.detach().cpu().contiguous()
                        for key, value in module.state_dict().items()})
    for name, optimizer in optimizers.items():
        optimizer_tensors, optimizer_meta[name] = optimizer_to_flat(f"optimizer.{name}", optimizer)
        tensors.update({key: value.detach().cpu().contiguous() for key, value in optimizer_tensors.items()})
    for name, generator in generators.items():
        tensors[f"rng.{name}"] = generator.get_state()
    tensor_path = folder / f"step_{step:09d}.safetensors"
    # atomic_path returns only once the tensors and their rename are on disk: the JSON below commits them.
    with atomic_path(tensor_path) as temporary:
        try:
            save_file(tensors, str(temporary))
        except SafetensorError as error:  # a full disk arrives as safetensors' own error, not an OSError
            raise (os_error_of(error, tensor_path) or error) from error
    architectures = {name: module.architecture for name, module in modules.items()
                     if getattr(module, "architecture", None) is not None}
    atomic_write_json(folder / f"step_{step:09d}.json", {
        "format": FORMAT, "step": step, "sha256": _sha256(tensor_path), "optimizers": optimizer_meta,
        "modules": sorted(modules), "generators": sorted(generators),
        **({"architectures": architectures} if architectures else {}), **(extra or {}),
    })
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return tensor_path


def list_checkpoints(folder: Path) -> list[Path]:
    """Committed checkpoints (their JSON files), oldest first."""
    return sorted(Path(folder).glob("step_*.json"))


def load_checkpoint(json_path: Path) -> tuple[dict, dict]:
    """Read and verify one checkpoint: returns (tensors, metadata), or raises CheckpointError."""
    json_path = Path(json_path)
    tensor_path = json_path.with_suffix(".safetensors")
    advice = (f"delete {json_path.name} and {tensor_path.name} to fall back to an earlier checkpoint, "
              "or start the run again in a new directory")
    try:
        meta = read_json(json_path)
    except (FileNotFoundError, ValueError) as error:
        raise CheckpointError(f"checkpoint metadata unreadable: {error}; {advice}") from error
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path} holds a JSON {type(meta).__name__}, not a checkpoint's metadata; {advice}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a {FORMAT} file (format={meta.get('format')!r}); {advice}")
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise CheckpointError(f"{json_path} lacks {', '.join(missing)}: it is damaged; {advice}")
    if not tensor_path.is_file():
        raise CheckpointError(f"{tensor_path} is missing; {advice}")
    if _sha256(tensor_path) != meta["sha256"]:
        raise CheckpointError(f"{tensor_path} is corrupt (its SHA-256 does not match {json_path.name}); {advice}")
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{tensor_path} cannot be read as safetensors ({error}); {advice}") from error
    return tensors, meta


def restore(tensors: dict, meta: dict, modules: dict[str, torch.nn.Module],
            optimizers: dict[str, torch.optim.Optimizer] | None = None,
            generators: dict[str, torch.Generator] | None = None) -> None:
    """Load module weights, optimizer states and generator states from a verified checkpoint."""
    _check_architectures(meta, modules)
    for name, module in modules.items():
        prefix = f"{name}."
        weights = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
        try:
            module.load_state_dict(weights)
        except RuntimeError as error:
            raise CheckpointError(f"checkpoint weights for '{name}' do not fit the model built from the "
                                  f"run's config: {error}") from error
    for name, optimizer in (optimizers or {}).items():
        optimizer.load_state_dict(optimizer_from_flat(f"optimizer.{name}", tensors, meta["optimizers"][name]))
        _match_parameter_layouts(optimizer)
    for name, generator in (generators or {}).items():
        generator.set_state(tensors[f"rng.{name}"])


def _check_architectures(meta: dict, modules: dict[str, torch.nn.Module]) -> None:
    """Refuse weights saved under another revision of a module's computation (see VAE.architecture): they
    would load, as the shapes agree, and silently run in a network they were not trained in."""
    saved = meta.get("architectures", {})
    for name, module in modules.items():
        built = getattr(module, "architecture", None)
        if saved.get(name) != built:
            raise CheckpointError(
                f"checkpoint step {meta['step']} holds '{name}' weights of another revision of this architecture "
                f"(saved: {saved.get(name) or 'the one before revisions were recorded'}; this vaelens builds: "
                f"{built or 'the unrevised one'}), which would run in a network they were not trained in; "
                "train it again in a new run directory (its run id has changed, so `vaelens sweep` does so itself)")


def _match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded state tensor its parameter's memory layout. Checkpoints store contiguous tensors,
    while channels-last weights (train.channels_last) have other strides, and fused Adam refuses a
    state whose strides differ from its parameter's."""
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            state = optimizer.state.get(parameter, {})
            for key, value in state.items():
                if (isinstance(value, torch.Tensor) and value.shape == parameter.shape
                        and value.stride() != parameter.stride()):
                    state[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)
