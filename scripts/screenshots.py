"""Regenerates screenshots/*.svg from the snapshot tests' scenarios (`make screenshots`)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import load_config  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from tests.tui.scenarios import SCENARIOS, SIZE, Scenario, scenario_app  # noqa: E402


async def shoot(scenario: Scenario, out: Path) -> Path:
    """Run one scenario on a fresh engine in a temp dir and save what the screen shows."""
    with tempfile.TemporaryDirectory(prefix="ha-") as directory:
        config = load_config(
            Path(directory) / "no-config.toml",
            env={},
            flags={
                "data_dir": str(Path(directory) / "data"),
                "redis.tcp_port": free_port(),
                "webdav.port": free_port(),
            },
        ).config
        app = scenario_app(config)
        async with app.run_test(size=SIZE) as pilot:
            await scenario.run_before(app)(pilot)
            svg = app.export_screenshot()
    path = out / f"{scenario.name}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    """Write every scenario's SVG (or only those named on the command line)."""
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    wanted = set(argv)
    for scenario in SCENARIOS:
        if wanted and scenario.name not in wanted:
            continue
        print(asyncio.run(shoot(scenario, out)).relative_to(ROOT), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
