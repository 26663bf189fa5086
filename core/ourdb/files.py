"""Data files `N.db`: positioned reads and writes with cached descriptors, never truncating."""

from __future__ import annotations

import errno
import os
import re

from core.ourdb.format import FILE_START, data_file_name

_DATA_NAME = re.compile(r"^(0|[1-9][0-9]*)\.db$")


def write_all(fd: int, data: bytes, offset: int) -> None:
    """pwrite every byte or raise; a short write is never taken as success."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.ENOSPC, "write made no progress")
        view = view[written:]
        offset += written


def fsync_dir(path: str) -> None:
    """Make renames and new directory entries in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DataFiles:
    """The data files of one database directory.

    Reads use read-only descriptors and never create a file (spec §11 #14, #21).
    """

    def __init__(self, directory: str, *, writable: bool) -> None:
        self.directory = directory
        self.writable = writable
        self._read_fds: dict[int, int] = {}
        self._write_fds: dict[int, int] = {}
        self._dirty: set[int] = set()

    def path(self, file_nr: int) -> str:
        """Full path of data file `file_nr`."""
        return os.path.join(self.directory, data_file_name(file_nr))

    def existing(self) -> list[int]:
        """Numbers of the data files present, ascending."""
        found = []
        for name in os.listdir(self.directory):
            match = _DATA_NAME.match(name)
            if match and int(match.group(1)) <= 0xFFFF:
                found.append(int(match.group(1)))
        return sorted(found)

    def read_fd(self, file_nr: int) -> int:
        """Cached read-only descriptor; FileNotFoundError when the file is missing."""
        fd = self._read_fds.get(file_nr)
        if fd is None:
            fd = os.open(self.path(file_nr), os.O_RDONLY)
            self._read_fds[file_nr] = fd
        return fd

    def cached_read_fd(self, file_nr: int) -> int:
        """Like `read_fd`, but -1 instead of an exception when the file is missing."""
        fd = self._read_fds.get(file_nr)
        if fd is not None:
            return fd
        try:
            return self.read_fd(file_nr)
        except FileNotFoundError:
            return -1

    def _write_fd(self, file_nr: int) -> int:
        fd = self._write_fds.get(file_nr)
        if fd is None:
            fd = os.open(self.path(file_nr), os.O_RDWR | os.O_CREAT, 0o600)
            self._write_fds[file_nr] = fd
        return fd

    def size(self, file_nr: int) -> int:
        """Current size of a data file, -1 when it does not exist."""
        try:
            return os.stat(self.path(file_nr)).st_size
        except FileNotFoundError:
            return -1

    def read(self, file_nr: int, size: int, offset: int) -> bytes:
        """Up to `size` bytes at `offset` (short at end of file)."""
        return os.pread(self.read_fd(file_nr), size, offset)

    def create(self, file_nr: int) -> None:
        """Create a new data file holding the single start byte; refuse to overwrite one."""
        fd = os.open(self.path(file_nr), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._write_fds[file_nr] = fd
        write_all(fd, FILE_START, 0)
        self._dirty.add(file_nr)

    def write(self, file_nr: int, data: bytes, offset: int) -> None:
        """Write `data` at `offset`, creating the file (with its start byte) if missing."""
        fd = self._write_fd(file_nr)
        if offset > 0 and os.fstat(fd).st_size == 0:
            write_all(fd, FILE_START, 0)
        write_all(fd, data, offset)
        self._dirty.add(file_nr)

    def truncate(self, file_nr: int, size: int) -> None:
        """Cut a file to `size` bytes (only ever used for a torn tail)."""
        os.ftruncate(self._write_fd(file_nr), size)
        self._dirty.add(file_nr)

    def sync(self) -> None:
        """fsync every file written since the last sync."""
        for file_nr in sorted(self._dirty):
            os.fsync(self._write_fd(file_nr))
        self._dirty.clear()

    def close(self) -> None:
        """Close every descriptor."""
        for fd in [*self._read_fds.values(), *self._write_fds.values()]:
            os.close(fd)
        self._read_fds.clear()
        self._write_fds.clear()
