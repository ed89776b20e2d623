"""Atomic file writes and file locks, with nothing heavier than the standard library (the map worker uses it too)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"  # temp files a crash may leave behind; ModelLibrary sweeps old ones


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so that `path` is either the old file or the whole new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a saved model is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


@contextmanager
def file_lock(path: Path, *, blocking: bool = True):
    """Hold an exclusive lock on `path` (created if missing) for the `with` block; -> True when it is held.

    `fcntl.flock`, so it works between processes and between replicas on one shared folder (NFS emulates
    it with a POSIX lock), and the kernel releases it when its holder dies, even by SIGKILL. With
    `blocking=False` the block runs at once and gets False when another holder has it. The lock file stays
    (removing it while someone waits would let two holders in); a holder may write a few bytes in it for
    the waiters (MapStore writes its progress). A folder that cannot hold the file (read-only, full) gives
    None: the caller goes on unlocked, as a single process would."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            held = True
        except BlockingIOError:
            held = False
        yield held
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
