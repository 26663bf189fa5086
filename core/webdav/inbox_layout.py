"""Where inbox files live: which paths are jobs, in which circle and topic, and what goes beside."""

from __future__ import annotations

import os
import re
from pathlib import Path

INBOX_DIR = "inbox"
SUBMITTED_DIR = "submitted"
SUFFIX = ".hero"
DEFAULT_CIRCLE = "default"
DEFAULT_TOPIC = "default"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SUBMITTED = re.compile(r"(?P<name>.+)\.(?P<id>\d+)\.hero")


def place(inbox: Path, path: Path) -> tuple[str, str] | str | None:
    """(circle, topic) for a job file, an error message for a misplaced one, else None.

    None covers what the inbox ignores: other suffixes, hidden files (`.name`, macOS
    `._name`, unfinished uploads), and everything under a `submitted/` folder.
    """
    try:
        parts = path.relative_to(inbox).parts
    except ValueError:
        return None
    if not parts or not parts[-1].endswith(SUFFIX) or parts[-1].startswith("."):
        return None
    if SUBMITTED_DIR in parts[:-1] or any(part.startswith(".") for part in parts[:-1]):
        return None
    if len(parts) == 1:
        return DEFAULT_CIRCLE, DEFAULT_TOPIC
    if len(parts) == 3:
        circle, topic = parts[0], parts[1]
        if _NAME.fullmatch(circle) and _NAME.fullmatch(topic):
            return circle, topic
        return f"circle and topic names use letters, digits, '_', '-' and '.': {circle}/{topic}"
    return "put .hero files in inbox/ (default circle and topic) or inbox/<circle>/<topic>/"


def stem(path: Path) -> str:
    """The name without `.hero`."""
    return path.name[: -len(SUFFIX)]


def error_file(path: Path) -> Path:
    """`<name>.error.txt` beside a rejected `<name>.hero`."""
    return path.with_name(f"{stem(path)}.error.txt")


def submitted_file(path: Path, job_id: int) -> Path:
    """`submitted/<name>.<id>.hero` beside an accepted `<name>.hero`."""
    return path.parent / SUBMITTED_DIR / f"{stem(path)}.{job_id}{SUFFIX}"


def result_file(submitted: Path) -> Path:
    """`<name>.<id>.result.json` beside `<name>.<id>.hero`."""
    return submitted.with_name(f"{stem(submitted)}.result.json")


def parse_submitted(inbox: Path, path: Path) -> tuple[int, str, str] | None:
    """(job id, circle, topic) of a file in a `submitted/` folder, or None."""
    match = _SUBMITTED.fullmatch(path.name)
    if match is None or path.parent.name != SUBMITTED_DIR:
        return None
    found = place(inbox, path.parent.parent / f"{match['name']}{SUFFIX}")
    if not isinstance(found, tuple):
        return None
    return int(match["id"]), found[0], found[1]


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file under a hidden name and rename it, so readers see all or nothing."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
