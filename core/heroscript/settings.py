"""Settings of the actor registry, filled by the engine from config keys ``actors.*``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ActorsSettings:
    """What the built-in and configured actors may do.

    Attributes:
        modules: Python modules whose actors are loaded (config ``actors.modules``).
        enable_shell: whether ``shell.run`` exists (config ``actors.enable_shell``).
        files_root: the WebDAV root that confines ``file.*`` (``<data>/webdav``).
    """

    modules: tuple[str, ...] = ()
    enable_shell: bool = False
    files_root: Path | None = None
