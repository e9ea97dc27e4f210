"""A full disk during training, analysis and the report: one line naming the file, nothing already written
lost, no half-written analysis beside a missing analysis.json. On a real small tmpfs where this process may
mount one (root with the capability), and with a fault-injected writer everywhere."""

from __future__ import annotations

import errno
import json
import subprocess

import pytest

from vaelens.cli import main
from vaelens.io import atomic_path

TINY = ["--preset", "dsprites-bvae", "data.subset=128", "model.channels=8", "model.hidden_dim=32",
        "model.latent_dim=4", "train.steps=4", "train.batch_size=16", "train.checkpoint_every=2",
        "train.log_every=2", "train.progress=false", "train.device=cpu"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VAELENS_DEBUG", raising=False)


def _error_line(capsys) -> str:
    """The one error line (progress bars aside), with no traceback anywhere."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("vaelens ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def small_disk(tmp_path):
    """A 96 KiB tmpfs: room for a run's config and log, not for its first checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the fault-injected tests cover it")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_real_full_disk_during_training_is_one_line(small_disk, capsys):
    out = small_disk / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert line.startswith("vaelens train: error: the disk is full (writing ") and "--resume" in line
    assert "step_000000002.safetensors" in line
    assert not [item for item in (out / "checkpoints").iterdir()], "no partial checkpoint is left"


@pytest.fixture
def analysed_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert main(["analyze", str(out), "--images", "64", "--no-progress", "--no-disentanglement"]) == 0
    capsys.readouterr()
    return out


def _disk_fills_on(monkeypatch, name: str):
    """Make the write of any file called `name` fail as a full disk does inside matplotlib or Pillow: an
    OSError without a file name."""
    import vaelens.io as io_module

    real = io_module.fsync_file

    def fsync_or_fail(path):
        if name in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path)

    monkeypatch.setattr(io_module, "fsync_file", fsync_or_fail)


def test_a_full_disk_during_analysis_keeps_the_previous_analysis_whole(analysed_run, monkeypatch, capsys):
    before = {path.name: path.read_bytes() for path in (analysed_run / "analysis").iterdir()}
    analysis = (analysed_run / "analysis.json").read_bytes()
    _disk_fills_on(monkeypatch, "covariance_spectrum.png")
    assert main(["analyze", str(analysed_run), "--images", "32", "--no-progress", "--no-disentanglement"]) == 2
    line = _error_line(capsys)
    assert "the disk is full (writing " in line and "covariance_spectrum.png" in line
    assert (analysed_run / "analysis.json").read_bytes() == analysis
    assert {path.name: path.read_bytes() for path in (analysed_run / "analysis").iterdir()} == before
    assert not [path for path in analysed_run.iterdir() if path.name.endswith((".tmp", ".staging"))]


def test_a_full_disk_during_the_report_is_one_line(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"name": "full", "preset": "dsprites-bvae", "overrides": TINY[2:],
                                "grid": {"loss.beta": [1, 2]}, "analyze": False}))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sweep"), "--no-progress"]) == 0
    capsys.readouterr()
    _disk_fills_on(monkeypatch, "report.html")
    assert main(["report", str(tmp_path / "sweep")]) == 2
    line = _error_line(capsys)
    assert "the disk is full (writing " in line and "report.html" in line


def test_a_write_error_without_a_file_name_gets_the_target_name(tmp_path):
    with pytest.raises(OSError) as raised:
        with atomic_path(tmp_path / "figure.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.filename == str(tmp_path / "figure.png")
    assert list(tmp_path.iterdir()) == []
