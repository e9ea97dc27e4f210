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

