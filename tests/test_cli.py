"""The command line's error contract: one clear line for what a user can fix, a traceback for a bug."""

import errno
import json

import pytest
from safetensors import SafetensorError

from vaelens.cli import main
from vaelens.cli_errors import describe_os_error

TINY = ["--preset", "dsprites-bvae", "data.subset=128", "model.channels=8", "model.hidden_dim=32",
        "model.latent_dim=4", "train.steps=6", "train.batch_size=16", "train.checkpoint_every=2",
        "train.log_every=2", "train.progress=false", "train.device=cpu"]
UNWRITABLE = "/sys/vaelens-cannot-write-here"
"""A folder no process may create, root included (sysfs), so the test holds in CI's root container too."""


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VAELENS_DEBUG", raising=False)


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_an_unwritable_out_is_one_line_for_train_analyze_and_sweep(tmp_path, capsys):
    assert main(["train", *TINY, "--out", f"{UNWRITABLE}/run"]) == 2
    assert f"permission denied: {UNWRITABLE}" in _error_line(capsys)
    assert main(["train", *TINY, "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "run"), "--images", "16", "--no-disentanglement", "--out", UNWRITABLE,
                 "--no-progress"]) == 2
    assert "choose an output folder (--out) you can write to" in _error_line(capsys)
    assert main(["sweep", "tiny", "--out", UNWRITABLE]) == 2
    assert f"permission denied: {UNWRITABLE}" in _error_line(capsys)


def test_a_full_disk_during_a_checkpoint_loses_nothing_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from vaelens.training import checkpoint as checkpoint_module

    real_save = checkpoint_module.save_file
    calls = {"n": 0}

    def fills_the_disk(tensors, path):  # the second checkpoint (step 4) meets a full disk
        calls["n"] += 1
        if calls["n"] == 2:  # what safetensors raises there (its own error type, not an OSError)
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real_save(tensors, path)

    monkeypatch.setattr(checkpoint_module, "save_file", fills_the_disk)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert "the disk is full" in line and "last complete checkpoint is intact" in line and "--resume" in line
    assert "step_000000004.safetensors" in line
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000000002.json",
                                                                       "step_000000002.safetensors"]
    monkeypatch.setattr(checkpoint_module, "save_file", real_save)  # space freed
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["resumed_from"] == 2


def test_an_unexpected_error_keeps_its_traceback(tmp_path, monkeypatch):
    from vaelens.training import trainer

    def bug(*args, **kwargs):
        raise RuntimeError("an internal torch failure")

    monkeypatch.setattr(trainer.SingleStepper, "step", bug)
    with pytest.raises(RuntimeError, match="an internal torch failure"):
        main(["train", *TINY, "--out", str(tmp_path / "run")])


def test_debug_shows_the_traceback_of_an_expected_error(tmp_path, capsys):
    from vaelens.config import ConfigError

    assert main(["train", "model.latent_dim=0", "--out", str(tmp_path / "x")]) == 2
    assert "model.latent_dim must be at least 1, got 0" in _error_line(capsys)
    with pytest.raises(ConfigError, match="model.latent_dim"):
        main(["--debug", "train", "model.latent_dim=0", "--out", str(tmp_path / "x")])


@pytest.mark.parametrize("code, expected", [
    (errno.EROFS, "read-only file system: /data/out; choose an output folder (--out) on a writable disk"),
    (errno.EACCES, "permission denied: /data/out; choose an output folder (--out) you can write to"),
    (errno.ENOSPC, "the disk is full (writing /data/out)"),
])
def test_operating_system_failures_read_as_what_to_do(code, expected):
    assert describe_os_error(OSError(code, "x", "/data/out"), "train").startswith(expected)
    assert describe_os_error(OSError(code, "x"), "train") is None  # no file named: keep the traceback


def test_analyze_says_a_run_diverged_and_analyses_its_kept_checkpoint_when_asked(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "train.lr=0.5", "--out", str(out)]) == 2  # diverges at step 3 on CPU
    assert "diverged at step" in _error_line(capsys)
    assert main(["analyze", str(out), "--images", "16", "--no-disentanglement", "--no-progress"]) == 2
    line = _error_line(capsys)
    assert "diverged at step" in line and "pass --diverged" in line
    assert main(["analyze", str(out), "--images", "16", "--no-disentanglement", "--no-progress", "--device", "cpu",
                 "--diverged"]) == 0
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["run.status"] == "diverged" and analysis["run.checkpoint_step"] == 2
