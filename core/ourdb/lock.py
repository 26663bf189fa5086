"""One writer per database: an flock on `ourdb.lock` that records the holder's pid."""

from __future__ import annotations

import contextlib
import fcntl
import os

from core.ourdb.errors import LockedError
from core.ourdb.files import write_all


class WriterLock:
    """Exclusive, non-blocking inter-process lock, released when the holder dies."""

    def __init__(self, path: str, db_path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = self._holder()
            os.close(self._fd)
            raise LockedError(db_path, pid) from None
        os.ftruncate(self._fd, 0)
        write_all(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> int | None:
        # The holder writes its pid right after locking, so this may briefly be empty.
        with contextlib.suppress(OSError, ValueError):
            return int(os.pread(self._fd, 32, 0).decode().strip())
        return None

    def release(self) -> None:
        """Unlock and close; the pid is left behind, it is only read while locked."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def writer_active(path: str) -> bool:
    """True while some process holds the writer lock at `path` (never creates the file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a shared lock taken here
    return False
