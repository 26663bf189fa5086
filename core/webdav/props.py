"""Dead WebDAV properties kept in SQLite, so what clients set survives a restart."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from wsgidav.prop_man.property_manager import PropertyManager

_SCHEMA = """
CREATE TABLE IF NOT EXISTS props (
    url TEXT NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (url, name)
) WITHOUT ROWID
"""


class SqliteProps(MutableMapping[str, dict[str, Any]]):
    """URL -> {property name: value} in one table; the shape WsgiDAV's manager expects.

    WsgiDAV stores values as serialized XML (bytes); text values are kept as text.
    One connection serves every cheroot thread, behind a lock.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)

    def __getitem__(self, url: str) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, value FROM props WHERE url = ?", (url,)
            ).fetchall()
        if not rows:
            raise KeyError(url)
        return dict(rows)

    def __setitem__(self, url: str, props: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.execute("DELETE FROM props WHERE url = ?", (url,))
                self._conn.executemany(
                    "INSERT INTO props (url, name, value) VALUES (?, ?, ?)",
                    [(url, name, value) for name, value in props.items()],
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def __delitem__(self, url: str) -> None:
        with self._lock:
            deleted = self._conn.execute("DELETE FROM props WHERE url = ?", (url,)).rowcount
        if not deleted:
            raise KeyError(url)

    def __contains__(self, url: object) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM props WHERE url = ? LIMIT 1", (url,))
            return row.fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            urls = [row[0] for row in self._conn.execute("SELECT DISTINCT url FROM props")]
        return iter(urls)

    def __len__(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COUNT(DISTINCT url) FROM props").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()


class SqlitePropertyManager(PropertyManager):  # type: ignore[misc]
    """WsgiDAV's property manager over SqliteProps instead of an in-memory dict."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        # Opened now rather than lazily: WsgiDAV's lazy open takes the write lock while a
        # reader may hold the read lock.
        self._dict = SqliteProps(path)
        self._loaded = True

    def __repr__(self) -> str:
        return f"SqlitePropertyManager({self._path})"

    def _lazy_open(self) -> None:
        """Already open."""

    def _sync(self) -> None:
        """Every write is its own committed transaction."""

    def close(self) -> None:
        """Close the database (the service calls this when it stops)."""
        self._close()

    def _close(self) -> None:
        if self._loaded:
            self._loaded = False
            self._dict.close()
