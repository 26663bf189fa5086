"""Shared helpers for the OurDB tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_heroagent

ROOT = Path(__file__).resolve().parents[3]
VECTORS_PATH = Path(__file__).resolve().parents[2] / "data" / "ourdb_vectors.json"


def load_vectors() -> list[dict[str, Any]]:
    return list(json.loads(VECTORS_PATH.read_text()))


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`heroagent ourdb *args` in a child process."""
    return run_heroagent("ourdb", *args, cwd=ROOT, timeout=timeout)


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db"
