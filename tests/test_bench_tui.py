"""`python -m bench.tui --quick` runs end to end: first screen, key latency, clean quit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_tui_quick() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tui", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first screen" in done.stdout
    assert "key-to-frame" in done.stdout
    assert "children left: none" in done.stdout


def test_readme_block_holds_each_figure_beside_its_target(tmp_path: Path) -> None:
    from bench import tui
    from bench.readme import markers, rewrite_block

    start, end = markers("tui")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{start}\nold\n{end}\ntail\n")
    result = {
        "p50_ms": 2.9, "p99_ms": 58.4, "max_ms": 88.2, "cpu_p50_ms": 2.7, "cpu_p99_ms": 25.0,
        "drained_per_s": 3713.0, "rss_start_mib": 119.0, "rss_end_mib": 189.0,
        "rss_slots_mib": 35.0, "anon_start_mib": 80.0, "anon_mid_mib": 90.0,
        "anon_end_mib": 91.0,
    }  # fmt: skip
    run = tui.Run(1_000_000, "full rate", "in a child process", 600.0, "0.1", False, False)
    rewrite_block("tui", tui.readme_lines(run, result, 1.0, 0.75, True), readme)
    text = readme.read_text()
    assert "old" not in text
    assert text.endswith(f"{end}\ntail\n")
    assert "1,000,000 jobs in the history" in text
    assert (
        "| key to frame in Jobs, p50 / p99 / max | 2.9 / 58.4 / 88.2 ms | p99 under 100 ms |"
        in text
    )
    assert "| the app's RSS | 119 MiB, 189 MiB after 600 s of flow | under 300 MiB |" in text
    assert "| first screen | 1.00 s | under 1.5 s |" in text
    assert "start, half-way, end of the soak | 80, 90, 91 MiB | flat |" in text
