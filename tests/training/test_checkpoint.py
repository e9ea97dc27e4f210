"""Checkpoint files: the umask's mode, and tensors durable on disk before the JSON that commits them."""

import os
import stat
from pathlib import Path

import pytest
import torch

from vaelens.training.checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint


def _save(folder: Path, step: int, keep: int = 2) -> tuple[torch.nn.Module, Path]:
    model = torch.nn.Linear(3, 2)
    adam = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    adam.step()
    return model, save_checkpoint(folder, step, {"model": model}, {"adam": adam},
                                  {"data": torch.Generator().manual_seed(step)}, keep=keep)


def test_checkpoint_round_trips(tmp_path):
    model, _ = _save(tmp_path, 3)
    tensors, meta = load_checkpoint(list_checkpoints(tmp_path)[-1])
    fresh = torch.nn.Linear(3, 2)
    restore(tensors, meta, {"model": fresh})
    torch.testing.assert_close(fresh.weight, model.weight)
    assert meta["step"] == 3


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600)])
def test_checkpoint_files_get_the_mode_the_umask_allows(tmp_path, mask, expected):
    previous = os.umask(mask)
    try:
        _, tensor_path = _save(tmp_path, 1)
    finally:
        os.umask(previous)
    for path in (tensor_path, tensor_path.with_suffix(".json")):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


def test_tensors_and_their_rename_are_on_disk_before_the_json_is_written(tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the file behind a descriptor")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def recording_replace(source, target):
        events.append(("replace", Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    folder = tmp_path / "checkpoints"
    _save(folder, 7)
    kinds = [(kind, Path(name).name if kind == "fsync" else name) for kind, name in events]
    tensor_rename = kinds.index(("replace", "step_000000007.safetensors"))
    json_rename = kinds.index(("replace", "step_000000007.json"))
    tensor_fsyncs = [index for index, (kind, name) in enumerate(kinds)
                     if kind == "fsync" and name.startswith(".step_000000007.safetensors.")]
    folder_fsyncs = [index for index, event in enumerate(kinds) if event == ("fsync", folder.name)]
    json_writes = [index for index, (kind, name) in enumerate(kinds)
                   if kind == "fsync" and name.startswith(".step_000000007.json.")]
    assert tensor_fsyncs and max(tensor_fsyncs) < tensor_rename, "tensor data must be flushed before its rename"
    assert any(tensor_rename < index < min(json_writes) for index in folder_fsyncs), \
        "the folder must be flushed after the tensor rename and before the JSON is written"
    assert json_rename > tensor_rename and folder_fsyncs[-1] > json_rename


def test_pruning_keeps_the_newest_and_removes_both_files(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step, keep=2)
    assert [path.stem for path in list_checkpoints(tmp_path)] == ["step_000000002", "step_000000003"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "step_000000002.json", "step_000000002.safetensors", "step_000000003.json", "step_000000003.safetensors"]


def test_a_revised_architecture_is_recorded_and_weights_of_its_earlier_revision_are_refused(tmp_path):
    from vaelens.io import atomic_write_json, read_json
    from vaelens.models import ResNetVAE
    from vaelens.training.checkpoint import CheckpointError

    model = ResNetVAE((3, 16, 16), 4, 8, (1, 2))
    save_checkpoint(tmp_path, 5, {"model": model}, {}, {})
    json_path = list_checkpoints(tmp_path)[-1]
    tensors, meta = load_checkpoint(json_path)
    assert meta["architectures"] == {"model": "resnet/latent-diffusion"}
    restore(tensors, meta, {"model": ResNetVAE((3, 16, 16), 4, 8, (1, 2))})
    # a checkpoint from before the resnet model's revision records no architecture
    atomic_write_json(json_path, {key: value for key, value in read_json(json_path).items() if key != "architectures"})
    tensors, meta = load_checkpoint(json_path)
    with pytest.raises(CheckpointError, match="checkpoint step 5 holds 'model' weights of another revision of this "
                                              "architecture .saved: the one before revisions were recorded; this "
                                              "vaelens builds: resnet/latent-diffusion.*train it again in a new run "
                                              "directory"):
        restore(tensors, meta, {"model": ResNetVAE((3, 16, 16), 4, 8, (1, 2))})


def test_modules_never_revised_record_no_architecture(tmp_path):
    _save(tmp_path, 1)
    assert "architectures" not in load_checkpoint(list_checkpoints(tmp_path)[-1])[1]
