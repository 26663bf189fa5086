"""The README's bench blocks: the marked places a bench's `--readme` rewrites, and the machine."""

from __future__ import annotations

import os
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def markers(name: str) -> tuple[str, str]:
    """The start and end marker of the README block `name` (`jobs`, `tui`)."""
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def rewrite_block(name: str, lines: list[str], readme: Path = README) -> None:
    """Put `lines` between the markers of block `name`, leaving the rest of the README."""
    start, end = markers(name)
    text = readme.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + "\n".join([start, "", *lines, "", end]) + tail)
    print(f"   rewrote the {start} block of {readme}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> str:
    """Cores and CPU model, for a README block."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"
