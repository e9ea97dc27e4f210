"""Atomic, durable file writes: a crash mid-write leaves the old file intact, never a truncated one.

A write goes to `.<target name>.<random>.tmp` in the target's folder, is fsynced, renamed over the
target, and the folder is fsynced so the rename itself survives a power cut. A write killed before
the rename leaves only such a temporary behind; `remove_stale_temporaries` clears them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path

_TEMPORARY_NAME = re.compile(r"\..+\.(?:[0-9a-f]{12}|[a-z0-9_]{8})\.tmp")


def _create_temporary(folder: Path, name: str) -> Path:
    """Create an empty temporary file beside `name`, with the mode the umask allows for a new file.

    tempfile.mkstemp would force mode 0600 on every output; os.open with 0o666 lets the kernel apply
    the umask, as for any file a program creates. O_EXCL makes a name collision an error, not a reuse.
    """
    for _ in range(100):
        temporary = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary
    raise FileExistsError(f"could not create a temporary file for {folder / name}: 100 random names were taken")


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk; a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a directory; its renames are durable without it
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path in the target's folder; on success fsync it, rename it over `path` and
    fsync the folder, so the target is either the old file or the complete new one, also after a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(path.parent, path.name)
    mode = stat.S_IMODE(temporary.stat().st_mode)
    try:
        yield temporary
        # Some writers (safetensors' save_file) replace the file with one of their own, created 0600.
        if stat.S_IMODE(temporary.stat().st_mode) != mode:
            os.chmod(temporary, mode)
        fsync_file(temporary)
        os.replace(temporary, path)
        fsync_directory(path.parent)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def atomic_folder(path: Path, replace: bool = False):
    """Yield a temporary folder beside `path` to fill; on success fsync what was written, rename the folder to
    `path` and fsync the parent, so `path` is never a half-written folder, also after a power cut. An empty
    folder at `path` is taken over; a non-empty one is a FileExistsError unless `replace`, which moves it aside,
    renames the new folder in and only then deletes the old one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; choose another output folder")
    occupied = path.is_dir() and any(path.iterdir())
    if occupied and not replace:
        raise FileExistsError(f"{path} exists and is not empty; choose another output folder or replace it (--force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    temporary.mkdir()
    try:
        yield temporary
        for written in temporary.rglob("*"):
            if written.is_file():
                fsync_file(written)
        fsync_directory(temporary)
        old = path.parent / f".{path.name}.{secrets.token_hex(6)}.old" if occupied else None
        if old is not None:
            os.replace(path, old)
        elif path.is_dir():
            path.rmdir()  # the empty folder given as the target (rmdir refuses one that was filled meanwhile)
        os.replace(temporary, path)
        fsync_directory(path.parent)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, allow_nan=True) + "\n")


def is_stale_temporary(path: Path) -> bool:
    """Whether `path` is named like a temporary of `atomic_path`: `.<name>.<random>.tmp`.

    The random part is exactly what a writer produces: 12 hex digits here, or the 8 characters of
    [a-z0-9_] that tempfile.mkstemp drew in earlier versions; anything looser could match a user's file.
    """
    return _TEMPORARY_NAME.fullmatch(Path(path).name) is not None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries a killed write left directly in `folder` (not in subfolders); return them.

    Call it only where no other process is writing into `folder`: a live write's temporary looks the same.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.is_symlink() and is_stale_temporary(entry):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def read_json(path: Path) -> dict:
    """Read a JSON file, naming the file when it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); was the write interrupted?") from error

