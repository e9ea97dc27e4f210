"""Atomic, durable file writes: a crash mid-write leaves the old file intact, never a truncated one.

A write goes to `.<target name>.<random>.tmp` in the target's folder, is fsynced, renamed over the
target, and the folder is fsynced so the rename itself survives a power cut. A write killed before
the rename leaves only such a temporary behind; `remove_stale_temporaries` clears them.
CSV files are written with every cell made safe to open in a spreadsheet (`spreadsheet_safe`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path

from vaelens.errors import VaelensError

_OS_ERROR_NUMBER = re.compile(r"os error (\d+)")


class UnsafePath(VaelensError):
    """A path vaelens would write through is a symbolic link (it could point anywhere)."""


def refuse_symlinks(root: Path, names, what: str = "folder") -> None:
    """Raise UnsafePath when any of `root / name` (or, for a real folder, an entry directly in it) is a
    symbolic link: vaelens writes, renames and deletes only inside `root`. `root` itself may be a link."""
    root = Path(root)
    for name in names:
        path = root / name
        entries = [path]
        if path.is_dir() and not path.is_symlink():
            entries += sorted(path.iterdir())
        for entry in entries:
            if entry.is_symlink():
                raise UnsafePath(f"{entry} is a symbolic link (to {os.readlink(entry)}); vaelens writes only inside "
                                 f"the {what} {root} and does not follow links there: replace the link by a real "
                                 "file or folder, or remove it")


def os_error_of(error: Exception, path) -> OSError | None:
    """The OSError (with its file name) that a library's own exception reports as "(os error N)", e.g.
    safetensors' SafetensorError on a full disk; None when the message names no OS error."""
    found = _OS_ERROR_NUMBER.search(str(error))
    if found is None:
        return None
    number = int(found.group(1))
    return OSError(number, os.strerror(number), str(path))


@contextmanager
def naming_the_file(path):
    """Give an OSError raised without a file name (e.g. from matplotlib or Pillow writing into an open
    handle) the name of `path`, so the command line can say in one line which write failed."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror or os.strerror(error.errno), str(path)) from error


_TEMPORARY_NAME = re.compile(r"\..+\.(?:[0-9a-f]{12}|[a-z0-9_]{8})\.tmp")
_STAGING_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.staging")


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
        with naming_the_file(path):
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
    """Yield a staging folder beside `path` to fill; on success fsync what was written, rename the folder to
    `path` and fsync the parent, so `path` is never a half-written folder, also after a power cut, and a failure
    part-way (a full disk) leaves the old folder as it was. An empty folder at `path` is taken over; a non-empty
    one is a FileExistsError unless `replace`, which moves it aside, renames the new folder in and only then
    deletes the old one. A symbolic link at `path` is refused (it could point anywhere). Staging and old
    folders are named `.<name>.<12 hex digits>.staging`, which remove_stale_temporaries clears after a kill."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafePath(f"{path} is a symbolic link; vaelens will not write through it: replace it by a folder")
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; choose another output folder")
    occupied = path.is_dir() and any(path.iterdir())
    if occupied and not replace:
        raise FileExistsError(f"{path} exists and is not empty; choose another output folder or replace it (--force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.staging"
    temporary.mkdir()
    try:
        with naming_the_file(temporary):
            yield temporary
            for written in temporary.rglob("*"):
                if written.is_file():
                    fsync_file(written)
            fsync_directory(temporary)
        old = path.parent / f".{path.name}.{secrets.token_hex(6)}.staging" if occupied else None
        if old is not None:
            os.replace(path, old)
        elif path.is_dir():
            path.rmdir()  # the empty folder given as the target (rmdir refuses one that was filled meanwhile)
        os.replace(temporary, path)
        fsync_directory(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, allow_nan=True) + "\n")


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection")."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spreadsheet_safe(cell):
    """`cell` as a spreadsheet should show it: a string that begins like a formula gets a leading single quote
    (OWASP's advice against CSV injection: run names, data names, paths and labels are chosen by users); numbers,
    negative ones included, and strings that are plain numbers ("-0.004") stay as they are."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES) and not _is_number(cell):
        return "'" + cell
    return cell


def atomic_write_csv(path: Path, header, rows, verbatim_columns=()) -> None:
    """A CSV file of `header` and `rows` (atomic), every cell passed through `spreadsheet_safe` except those of
    `verbatim_columns` (header names): columns of the writer's own vocabulary, which no user string reaches."""
    verbatim = [name in set(verbatim_columns) for name in header]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([spreadsheet_safe(cell) for cell in header])
    writer.writerows([cell if kept else spreadsheet_safe(cell) for cell, kept in zip(row, verbatim)] for row in rows)
    atomic_write_text(path, buffer.getvalue())


def is_stale_temporary(path: Path) -> bool:
    """Whether `path` is named like a temporary of `atomic_path`: `.<name>.<random>.tmp`.

    The random part is exactly what a writer produces: 12 hex digits here, or the 8 characters of
    [a-z0-9_] that tempfile.mkstemp drew in earlier versions; anything looser could match a user's file.
    """
    return _TEMPORARY_NAME.fullmatch(Path(path).name) is not None


def is_stale_staging(path: Path) -> bool:
    """Whether `path` is named like a staging folder of `atomic_folder`: `.<name>.<12 hex digits>.staging`."""
    return _STAGING_NAME.fullmatch(Path(path).name) is not None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries (and atomic_folder's staging folders) a killed write left directly in `folder`
    (not in subfolders); return them.

    Call it only where no other process is writing into `folder`: a live write's temporary looks the same.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_file() and is_stale_temporary(entry):
            entry.unlink(missing_ok=True)
        elif entry.is_dir() and is_stale_staging(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            continue
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

