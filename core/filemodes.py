"""Private file modes for everything the engine keeps: umask 077 and a 0700 data dir."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

# Files 0600, folders 0700: job params, results, the Redis password and AOF are nobody else's.
PRIVATE_UMASK = 0o077
# The engine's own folders under the data dir, tightened at start in case an older
# version (which left 0644/0755) made them. The WebDAV root is the user's and is left be.
OWN_FOLDERS = ("redis", "run", "jobsdb", "results", "webdav-state")
OWN_FILE_PREFIXES = ("jobs-index.sqlite",)


def make_private(data_dir: Path) -> None:
    """Set the process umask to 077 and make `data_dir` (and the engine's folders) private.

    A umask rather than modes at each call site: it covers files other code creates for
    us too (SQLite's journal, WsgiDAV's property store, valkey's AOF and RDB, which the
    child inherits the umask for). It is process-wide and stays set after the engine stops.

    Raises:
        OSError: When the data dir cannot be made or its mode changed.
    """
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(data_dir)
    for name in OWN_FOLDERS:
        folder = data_dir / name
        if folder.is_dir() and not folder.is_symlink():
            for root, dirs, files in os.walk(folder):
                for name_in_root in (*dirs, *files):
                    _tighten(Path(root) / name_in_root)
            _tighten(folder)
    for path in data_dir.iterdir():
        if path.name.startswith(OWN_FILE_PREFIXES):
            _tighten(path)


def _tighten(path: Path) -> None:
    """Drop group and other bits, keeping the owner's (a symlink's target is not ours)."""
    with contextlib.suppress(FileNotFoundError):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return
        path.chmod(stat.S_IMODE(mode) & 0o700)
