"""What the command line prints when a command fails: one line that says what happened and what to do, for
the errors vaelens raises on purpose and for the operating-system failures a user can fix (a full disk, no
permission); anything else keeps its traceback, so a bug can be traced."""

from __future__ import annotations

import errno
import pickle
import signal
import threading
from contextlib import contextmanager

from vaelens.errors import UnsafePickle, VaelensError

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
        checkpoint = ", and the last complete checkpoint is intact" if command in RESUME_HINT else ""
        then = RESUME_HINT.get(command, "rerun the command")
        return (f"the disk is full (writing {where}). Nothing already written is lost: every file is written "
                f"whole or not at all{checkpoint}. Free some space, then {then}")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {where}; choose an output folder (--out) you can write to"
    if error.errno == errno.EROFS:
        return f"read-only file system: {where}; choose an output folder (--out) on a writable disk"
    return f"{error.strerror or error}: {where}"


def describe_error(error: BaseException, command: str) -> str | None:
    """The one line printed for `error`, or None when it keeps its traceback (an unexpected failure)."""
    if isinstance(error, EXPECTED_ERRORS):
        return str(error)
    if isinstance(error, pickle.UnpicklingError):  # torch refused a pickle that no vaelens loader named
        return str(UnsafePickle("a file vaelens was asked to read"))
    if isinstance(error, OSError):
        return describe_os_error(error, command)
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler sends before it kills a job), raised where the program is, so that
    it ends as an interrupt does: the checkpoints are intact and the message says how to continue."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_interrupt():
    """Handle SIGTERM as SIGINT for the block (in the main thread only: signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption_message(command: str, error: KeyboardInterrupt) -> tuple[str, int]:
    """The line printed when a command is interrupted or terminated, and its exit status (128 + signal)."""
    how = RESUME_HINT.get(command, "rerun the command")
    if isinstance(error, Terminated):
        return (f"terminated (SIGTERM); nothing already written is lost and a run continues from its last "
                f"checkpoint: {how}"), 128 + signal.SIGTERM
    return f"interrupted; a run continues from its last checkpoint: {how}", 128 + signal.SIGINT
