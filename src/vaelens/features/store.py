"""Save, load and resolve feature networks: safetensors weights + a JSON sidecar, never a pickle.

A network is stored as `X.safetensors` (the extractor's weights only; fitting heads are dropped)
beside `X.json` (architecture, how it was fitted, held-out metrics, and the SHA-256 of the weights
file). The weights are written first and the sidecar last, both atomically, so an interrupted
write is caught on load by the checksum instead of silently loading damaged weights.

A *name* (letters, digits, '.', '_', '-') means `<cache>/features/<name>.safetensors`, with the cache
folder from $VAELENS_CACHE or the platform's user cache; anything with a path separator or the
.safetensors suffix is a path, used as is.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from pathlib import Path

from vaelens.data.cache import cache_dir, file_sha256
from vaelens.features.network import FeatureNetwork
from vaelens.features.recipes import RECIPES, fit_recipe
from vaelens.io import atomic_path, atomic_write_json, read_json

FORMAT = "vaelens-feature-network"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def features_dir() -> Path:
    """The folder holding cached feature networks: <vaelens cache>/features."""
    return cache_dir() / "features"


def feature_network_path(name_or_path: str | Path) -> Path:
    """The .safetensors file a name or path refers to (see the module docstring)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(SUFFIX) or "/" in text or os.sep in text:
        path = Path(text).expanduser()
        if path.suffix != SUFFIX:
            raise ValueError(f"a feature network file must end in {SUFFIX}, got {path}")
        return path
    if not _NAME_PATTERN.fullmatch(text):
        raise ValueError(f"feature network name {text!r} may only hold letters, digits, '.', '_' and '-' "
                         f"(or give a path to a {SUFFIX} file)")
    return features_dir() / f"{text}{SUFFIX}"


def sidecar_path(weights_path: Path) -> Path:
    """The JSON sidecar beside a weights file."""
    return Path(weights_path).with_suffix(".json")


def fit_command(name_or_path: str | Path) -> str:
    """The shell command that creates the network `name_or_path`."""
    if str(name_or_path) in RECIPES:
        return f"vaelens fit-features --name {name_or_path}"
    return (f"vaelens fit-features --data name=DATASET [key=value ...] --method supervised|denoising|contrastive "
            f"--out {name_or_path}")


def save_feature_network(network: FeatureNetwork, metadata: dict, path_or_name: str | Path) -> Path:
    """Write the extractor's weights and a JSON sidecar (metadata + architecture + SHA-256); return the path."""
    path = feature_network_path(path_or_name)
    from safetensors.torch import save_file

    architecture = network.architecture()
    state = {key: value.detach().to("cpu").contiguous() for key, value in network.state_dict().items()}
    with atomic_path(path) as temporary:
        save_file(state, str(temporary), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        checksum = file_sha256(temporary)
    sidecar = {**metadata, **architecture, "architecture": architecture, "format": FORMAT,
               "format_version": FORMAT_VERSION, "weights_file": path.name, "sha256": checksum}
    atomic_write_json(sidecar_path(path), sidecar)
    return path


def _read_verified_sidecar(path: Path, name_or_path) -> dict:
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise FileNotFoundError(f"feature network {path} has no sidecar {sidecar} (architecture and checksum); "
                                f"refit it with: {fit_command(name_or_path)}")
    metadata = read_json(sidecar)
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{sidecar} is not a vaelens feature network sidecar of format version {FORMAT_VERSION} "
                         f"(format {metadata.get('format')!r}, version {metadata.get('format_version')!r}); "
                         f"refit it with: {fit_command(name_or_path)}")
    if file_sha256(path) != metadata.get("sha256"):
        raise ValueError(f"{path} does not match the SHA-256 recorded in {sidecar}: the file is corrupt, truncated "
                         f"or was replaced; refit it with: {fit_command(name_or_path)} (add --force for a cached name)")
    return metadata


def load_feature_network(name_or_path: str | Path, device="cpu") -> tuple[FeatureNetwork, dict]:
    """Load a saved network: (network in eval mode with requires_grad False, on `device`; metadata).

    Raises FileNotFoundError naming the expected file and the command that creates it, and
    ValueError when the file fails its checksum or does not fit the recorded architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = feature_network_path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no feature network '{name_or_path}': expected the file {path}; "
                                f"create it with: {fit_command(name_or_path)}")
    metadata = _read_verified_sidecar(path, name_or_path)
    try:
        network = FeatureNetwork(**metadata["architecture"])
        state = load_file(str(path), device="cpu")
    except (KeyError, TypeError, SafetensorError) as error:
        raise ValueError(f"feature network {path} cannot be rebuilt from its sidecar ({error}); "
                         f"refit it with: {fit_command(name_or_path)}") from error
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state.items()}
    if expected != found:
        differing = sorted(set(expected.items()) ^ set(found.items()))[:4]
        raise ValueError(f"the weights in {path} do not fit the architecture in its sidecar "
                         f"(differing tensors, name and shape: {differing}); refit it with: "
                         f"{fit_command(name_or_path)}")
    network.load_state_dict(state)
    network.to(device).eval().requires_grad_(False)
    return network, metadata


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path):
    """Hold an exclusive lock on `lock_path` (POSIX), so parallel runs fit a missing network only once."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; atomic writes still keep each file whole.
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_if_current(path: Path, name: str, device) -> tuple[FeatureNetwork, dict] | None:
    """The cached built-in network, or None (with a warning) when it is stale, damaged or absent."""
    if not path.is_file():
        return None
    try:
        network, metadata = load_feature_network(path, device=device)
    except (ValueError, FileNotFoundError) as error:
        warnings.warn(f"{error}; fitting the built-in network '{name}' again", stacklevel=3)
        return None
    cached_version = metadata.get("recipe", {}).get("version")
    if cached_version != RECIPES[name].version:
        warnings.warn(f"{path} was fitted with recipe version {cached_version} of '{name}', the current one is "
                      f"{RECIPES[name].version}; fitting it again", stacklevel=3)
        return None
    return network, metadata


def resolve_feature_network(name: str, *, fit_if_missing: bool = True, progress: bool = True, device="cpu",
                            steps: int | None = None) -> tuple[FeatureNetwork, dict]:
    """Load the feature network `name` (a cached name or a .safetensors path); fit a built-in one on first use.

    For a built-in name (see `vaelens.features.RECIPES`) that is not cached yet, or whose cached copy
    is damaged or from an older recipe, the recipe is fitted once (announced on stderr), saved in the
    cache and returned; `steps` overrides the recipe's steps for that fit only. Anything else is
    loaded as is. Returns (frozen network in eval mode on `device`, metadata).
    """
    path = feature_network_path(name)
    if str(name) not in RECIPES or not fit_if_missing:
        return load_feature_network(name, device=device)
    cached = _cached_if_current(path, name, device)
    if cached is not None:
        return cached
    with _exclusive_lock(path.with_suffix(".lock")):
        # Another process may have fitted it while this one waited for the lock.
        cached = _cached_if_current(path, name, device)
        if cached is not None:
            return cached
        recipe = RECIPES[name]
        print(f"vaelens: fitting feature network '{name}' ({recipe.method} on {recipe.data['name']}, "
              f"{recipe.steps if steps is None else steps} steps; first use only), caching it at {path}",
              file=sys.stderr, flush=True)
        network, metadata = fit_recipe(name, steps=steps, progress=progress, device=device)
        save_feature_network(network, metadata, path)
    return load_feature_network(path, device=device)


def cached_feature_networks() -> list[str]:
    """Names of the networks in the cache folder (those with both weights and sidecar)."""
    folder = features_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob(f"*{SUFFIX}") if sidecar_path(p).is_file())
