"""Shared data for the HeroScript tests: the spec cases and the wild corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data"


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((DATA / "heroscript_cases.json").read_text())
    return cases


def load_wild() -> list[dict[str, Any]]:
    wild: list[dict[str, Any]] = json.loads((DATA / "heroscript_wild.json").read_text())
    return wild
