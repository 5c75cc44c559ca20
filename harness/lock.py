"""One writer per run: an advisory lock file (`.loopprobe.lock`) in the directory being written.

The lock is `flock` on the file, which the kernel releases when its holder dies, so a lock left by a killed
process is simply taken over; the file keeps the holder's PID for the message a second writer gets. Locks
are re-entrant within a process (a suite locks its output and each run locks its own directory).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from harness.errors import RunError

LOCK_NAME = ".loopprobe.lock"
_held: dict[str, tuple[int, int]] = {}  # resolved directory -> (fd, depth)


@contextmanager
def write_lock(directory: Path, what: str = "loopprobe run", read_only_ok: bool = False):
    """Hold the directory's write lock for the block, or raise RunError naming the holder's PID.
    `read_only_ok`: a directory where no lock file can be made (read-only) has no writer either: go on."""
    directory = Path(directory)
    key = str(directory.resolve())
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        if read_only_ok:
            yield
            return
        raise RunError(f"{directory}: cannot write here ({e.strerror}); pass a writable --out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").split()
        os.close(fd)
        pid = holder[0] if holder else "?"
        raise RunError(f"{directory}: being written by another process (PID {pid}, {' '.join(holder[1:]) or what}); "
                       "wait for it to finish, or pass another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        fd, depth = _held[key]
        if depth == 1:
            del _held[key]
            os.ftruncate(fd, 0)
            os.close(fd)  # closing releases the flock
        else:
            _held[key] = (fd, depth - 1)
