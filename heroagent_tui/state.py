"""The app's own small state file (the chosen theme), kept apart from the user's config."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "tui-state.json"


@dataclass
class TUIState:
    """What the app remembers between runs."""

    theme: str = ""


def load_state(path: Path) -> TUIState:
    """The saved state, or defaults when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return TUIState()
    return TUIState(theme=str(data.get("theme", ""))) if isinstance(data, dict) else TUIState()


def save_state(path: Path, state: TUIState) -> None:
    """Write atomically, so a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
    os.replace(tmp, path)
