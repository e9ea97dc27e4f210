"""Exclusive locks on the folders vaelens writes: one writer per run directory, one per sweep directory.

A lock is an `fcntl.flock` on `FOLDER/.vaelens.lock`, held for the life of the writer. The kernel releases it
when the holder exits in any way (kill -9 included), so a lock is never stale: a second writer finds it
taken only while the first one is alive, and is refused with one line naming the holder's pid, host and
command (written into the lock file while it is held). Locks are re-entrant within a process (the sweep
that trains a run and then analyses it takes the same run's lock twice): flock would otherwise refuse the
second open file of the same process.

flock works on local file systems and on NFS (Linux emulates it with NFS byte-range locks); on a file
system that refuses it (some FUSE and SMB mounts: ENOLCK / EOPNOTSUPP) vaelens warns once and writes
unlocked, so two writers there are not stopped. Windows has no fcntl: the same, with the same warning.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from vaelens.errors import VaelensError

LOCK_FILE = ".vaelens.lock"
logger = logging.getLogger("vaelens")

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

_held: dict[str, list] = {}
"""Locks this process holds: resolved folder -> [open file descriptor, depth]."""
_warned_unlockable = False


class FolderLocked(VaelensError, RuntimeError):
    """Another live process is writing into the folder."""


def holder_of(folder: Path) -> dict:
    """What the lock file says about its holder (pid, host, command, since); {} when unreadable."""
    try:
        return json.loads((Path(folder) / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return (f"process {holder.get('pid')} on host {holder.get('host')} "
            f"({holder.get('command', 'vaelens')}, since {since})")


def _warn_unlockable(folder: Path, error: OSError) -> None:
    global _warned_unlockable
    if not _warned_unlockable:
        _warned_unlockable = True
        logger.warning("%s: this file system does not support file locks (%s); writing without a lock, so a "
                       "second vaelens writing the same folder would not be stopped", folder, error.strerror)


def _acquire(folder: Path, what: str) -> int | None:
    """Open and lock the folder's lock file; the descriptor, or None where locks are not supported."""
    path = folder / LOCK_FILE
    if path.is_symlink():
        raise VaelensError(f"{path} is a symbolic link; vaelens writes only inside {folder}: remove the link")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    if fcntl is None:
        _warn_unlockable(folder, OSError(errno.ENOSYS, "no fcntl on this platform"))
        return descriptor
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(descriptor)
            holder = holder_of(folder)
            raise FolderLocked(f"{folder} is in use: {_describe(holder)} is writing {holder.get('what', 'into it')} "
                               f"there, so {what} cannot start; wait for it to finish or stop it, then rerun") from None
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            _warn_unlockable(folder, error)
            return descriptor
        os.close(descriptor)
        raise
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(["vaelens", *sys.argv[1:3]]),
              "since": time.time(), "what": what}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(holder).encode(), 0)
    return descriptor


@contextmanager
def folder_lock(folder: str | Path, what: str = "a run"):
    """Hold the exclusive lock of `folder` (created if missing) for the block; FolderLocked when another
    live process holds it. `what` names what is being written, for the refusal's message."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _held:
        _held[key][1] += 1
    else:
        _held[key] = [_acquire(folder, what), 1]
    try:
        yield
    finally:
        entry = _held[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            if created:
                _remove_if_unused(folder)
            os.close(entry[0])  # closing the descriptor releases the flock


def _remove_if_unused(folder: Path) -> None:
    """Remove a folder this lock created when nothing but the lock file was written into it (a writer that
    was refused or failed before its first write leaves no trace)."""
    try:
        if [entry.name for entry in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()
            folder.rmdir()
    except OSError:
        pass


def holds_lock(folder: str | Path) -> bool:
    """Whether this process holds `folder`'s lock."""
    return str(Path(folder).resolve()) in _held
