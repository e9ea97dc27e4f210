"""One writer per folder: a second process is refused in one line naming the first, the kernel frees the lock
when its holder dies (kill -9 included), and a process may take its own lock again."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from vaelens.locks import LOCK_FILE, FolderLocked, folder_lock, holder_of, holds_lock


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, held_elsewhere):
    holder = held_elsewhere(tmp_path / "run")
    with pytest.raises(FolderLocked) as refused:
        with folder_lock(tmp_path / "run", "a training run"):
            pass
    message = str(refused.value)
    assert f"process {holder.pid} on host {socket.gethostname()}" in message and "a test writer" in message
    assert "\n" not in message
    assert holder_of(tmp_path / "run")["pid"] == holder.pid


def test_the_lock_is_freed_when_its_holder_is_killed(tmp_path, held_elsewhere):
    holder = held_elsewhere(tmp_path / "run")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with folder_lock(tmp_path / "run", "a training run"):
        assert holder_of(tmp_path / "run")["pid"] == os.getpid()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with folder_lock(tmp_path / "run"):
        with folder_lock(tmp_path / "run"):
            assert holds_lock(tmp_path / "run")
        assert holds_lock(tmp_path / "run")
    assert not holds_lock(tmp_path / "run")


def test_a_folder_the_lock_created_and_nothing_else_used_is_removed(tmp_path):
    with folder_lock(tmp_path / "new"):
        assert (tmp_path / "new" / LOCK_FILE).is_file()
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with folder_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "result.json").write_text("{}")
    assert (tmp_path / "kept" / "result.json").is_file()


def test_a_symlinked_lock_file_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).symlink_to(tmp_path / "outside")
    with pytest.raises(Exception, match="symbolic link"):
        with folder_lock(tmp_path / "run"):
            pass
    assert not (tmp_path / "outside").exists()
