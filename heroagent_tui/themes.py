"""Turns the theme files in `themes/` into Textual themes."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
DEFAULT_THEME = "heroagent-dark"


def themes_dir() -> Path:
    """The wheel ships the files inside the package; a dev checkout has them at the root."""
    packaged = Path(__file__).parent / "themes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "themes"


def load_theme(path: Path) -> Theme:
    """One theme file; its `name` defaults to the file name."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    fields = {key: str(data[key]) for key in _FIELDS if key in data}
    variables = {str(k): str(v) for k, v in dict(data.get("variables", {})).items()}
    return Theme(
        name=str(data.get("name", path.stem)),
        dark=bool(data.get("dark", True)),
        variables=variables,
        **fields,  # type: ignore[arg-type]  # only the colour fields, all strings
    )


def load_themes(directory: Path | None = None) -> list[Theme]:
    """Every `*.toml` theme of the directory, sorted by name."""
    directory = directory or themes_dir()
    return [load_theme(path) for path in sorted(directory.glob("*.toml"))]
