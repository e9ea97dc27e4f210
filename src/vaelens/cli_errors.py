"""What the command line prints when a command fails: one line that says what happened and what to do, for
the errors vaelens raises on purpose and for the operating-system failures a user can fix (a full disk, no
permission); anything else keeps its traceback, so a bug can be traced."""

from __future__ import annotations

import errno

from vaelens.errors import VaelensError

# Errors whose message already says what happened and what to do: printed as one line (--debug or
# VAELENS_DEBUG=1 shows their traceback). Anything else, a RuntimeError from torch say, is unexpected and
# keeps its traceback, so a bug can be traced.
EXPECTED_ERRORS = (VaelensError, ValueError, FileNotFoundError, FileExistsError)

RESUME_HINT = {"train": "rerun it with --resume", "sweep": "rerun the same command (it resumes)",
               "reproduce": "rerun the same command (it resumes)", "demo": "rerun the same command (it resumes)"}
"""How each command continues after an interruption."""


def describe_os_error(error: OSError, command: str) -> str | None:
    """One line for an operating-system failure on a named file (full disk, no permission, read-only
    disk); None for one without a file name, which stays a traceback."""
    where = error.filename
    if where is None:
        return None
    if error.errno == errno.ENOSPC:
        return (f"the disk is full (writing {where}). Nothing already written is lost: every file is written "
                f"whole or not at all, and the last complete checkpoint is intact. Free some space, then "
                f"{RESUME_HINT.get(command, 'rerun the command')}")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {where}; choose an output folder (--out) you can write to"
    if error.errno == errno.EROFS:
        return f"read-only file system: {where}; choose an output folder (--out) on a writable disk"
    return f"{error.strerror or error}: {where}"
