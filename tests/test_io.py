"""Atomic writes: new files get the umask's mode, data and rename are fsynced, killed writes are cleaned up; CSV
cells are safe to open in a spreadsheet."""

import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vaelens.io import (
    atomic_folder,
    atomic_path,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    is_stale_temporary,
    read_json,
    remove_stale_temporaries,
    spreadsheet_safe,
)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore the previous one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_allows(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    atomic_write_text(tmp_path / "sub" / "b.txt", "hello")
    assert mode_of(tmp_path / "a.json") == expected
    assert mode_of(tmp_path / "sub" / "b.txt") == expected
    assert read_json(tmp_path / "a.json") == {"x": 1}


def test_a_writer_that_replaces_the_temporary_still_gets_the_umask_mode(tmp_path, umask):
    umask(0o022)
    with atomic_path(tmp_path / "weights.bin") as temporary:
        # As safetensors' save_file does: write a private file of its own and rename it over ours.
        private = tmp_path / "private"
        private.write_bytes(b"tensors")
        private.chmod(0o600)
        os.replace(private, temporary)
    assert mode_of(tmp_path / "weights.bin") == 0o644
    assert (tmp_path / "weights.bin").read_bytes() == b"tensors"


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"old": True})
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as temporary:
            temporary.write_text("half a fi")
            raise RuntimeError("boom")
    assert read_json(target) == {"old": True}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["summary.json"]


def test_temporary_is_named_after_the_target_and_is_new(tmp_path):
    with atomic_path(tmp_path / "report.html") as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".report.html.")
        assert is_stale_temporary(temporary) and temporary.stat().st_size == 0
        temporary.write_text("page")
    assert (tmp_path / "report.html").read_text() == "page"


def _fsync_recorder(monkeypatch) -> list[str]:
    """Record the path behind every os.fsync call (then really fsync), in call order."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the file behind a descriptor")
    calls: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        calls.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return calls


def test_data_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    calls = _fsync_recorder(monkeypatch)
    events: list[tuple[str, str]] = []
    real_replace = os.replace

    def recording_replace(source, target):
        events.append(("fsyncs before rename", list(calls)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    with atomic_path(tmp_path / "results.csv") as temporary:
        temporary.write_text("a,b\n")
        name = str(temporary)
    assert events == [("fsyncs before rename", [name])]
    assert calls == [name, str(tmp_path)]


def test_remove_stale_temporaries_removes_only_temporaries(tmp_path):
    keep = ["summary.json", "report.html", ".hidden", "notes.tmp", ".x.tmp", "a.b.0123456789ab.tmp",
            ".summary.json.NOT-RANDOM.tmp", ".summary.json.0123456789abc.tmp", ".summary.json.abc.tmp.bak"]
    stale = [".summary.json.0123456789ab.tmp",  # this module's name: 12 hex digits
             ".config.yaml.k2_9xq0z.tmp",        # tempfile.mkstemp's name in earlier versions
             ".step_000000006.safetensors.f00dfeedbeef.tmp"]
    for name in keep + stale:
        (tmp_path / name).write_text("x")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".step.json.0123456789ab.tmp").write_text("x")
    (tmp_path / ".folder.0123456789ab.tmp").mkdir()

    removed = remove_stale_temporaries(tmp_path)
    assert sorted(path.name for path in removed) == sorted(stale)
    remaining = sorted(path.name for path in tmp_path.iterdir())
    assert remaining == sorted(keep + ["checkpoints", ".folder.0123456789ab.tmp"])
    assert (tmp_path / "checkpoints" / ".step.json.0123456789ab.tmp").exists(), "only the folder itself is cleaned"
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_remove_stale_temporaries_clears_what_a_killed_write_leaves(tmp_path):
    target = tmp_path / "analysis.json"
    # A real process dies mid-write (os._exit skips every cleanup, as SIGKILL would).
    script = ("import os, sys\nfrom vaelens.io import atomic_path\n"
              "with atomic_path(sys.argv[1]) as temporary:\n"
              "    temporary.write_text('{\"partial\"')\n    os._exit(9)\n")
    finished = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True)
    assert finished.returncode == 9, finished.stderr
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".analysis.json.") and not target.exists()
    assert remove_stale_temporaries(tmp_path) == left
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_appears_whole_and_leaves_nothing_beside_it(tmp_path):
    with atomic_folder(tmp_path / "out") as folder:
        (folder / "a.txt").write_text("a")
        assert not (tmp_path / "out").exists()  # filled beside its place, renamed in at the end
    assert [path.name for path in tmp_path.iterdir()] == ["out"] and (tmp_path / "out" / "a.txt").read_text() == "a"


def test_atomic_folder_keeps_the_old_folder_when_the_writer_fails(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_folder(tmp_path / "out", replace=True) as folder:
            (folder / "new.txt").write_text("new")
            raise RuntimeError("writer failed")
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["old.txt"]


def test_atomic_folder_replaces_a_non_empty_folder_only_when_asked(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="out exists and is not empty"):
        with atomic_folder(tmp_path / "out"):
            pass
    with atomic_folder(tmp_path / "out", replace=True) as folder:
        (folder / "new.txt").write_text("new")
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["new.txt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is not a folder"):
        with atomic_folder(tmp_path / "file", replace=True):
            pass


@pytest.mark.parametrize("cell,expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("-0.004", "-0.004"), ("+5", "+5"), ("-1e-3", "-1e-3"), (-0.004, -0.004), (3, 3), (True, True), (None, None),
    ("runs/b4", "runs/b4"), ("a=b", "a=b"), ("", ""),
])
def test_formula_cells_are_quoted_and_numbers_are_not(cell, expected):
    assert spreadsheet_safe(cell) == expected


def test_a_csv_reads_back_with_its_formula_cells_quoted(tmp_path):
    atomic_write_csv(tmp_path / "table.csv", ["name", "=value"], [["@run", -0.004], ["plain", "-1+2"]])
    rows = list(csv.reader((tmp_path / "table.csv").open()))
    assert rows == [["name", "'=value"], ["'@run", "-0.004"], ["plain", "'-1+2"]]
    atomic_write_csv(tmp_path / "kept.csv", ["family", "name"], [["+both", "+both"]], verbatim_columns=["family"])
    assert list(csv.reader((tmp_path / "kept.csv").open()))[1] == ["+both", "'+both"]
