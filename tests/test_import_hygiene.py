"""The engine and the command line load without Textual; only the TUI branch imports it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "module",
    ["core", "core.engine", "core.serve", "core.config", "heroagent_tui.cli"],
)
def test_import_leaves_textual_out(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_app_module_does_import_textual() -> None:
    # The check above would pass vacuously if nothing ever imported Textual.
    code = "import sys, heroagent_tui.app; print('textual' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "True"


SCREENS_AND_WIDGETS = [
    "heroagent_tui.screens.dashboard",
    "heroagent_tui.screens.jobs",
    "heroagent_tui.screens.job_detail",
    "heroagent_tui.screens.queues",
    "heroagent_tui.screens.submit",
    "heroagent_tui.screens.logs",
    "heroagent_tui.screens.service_panel",
    "heroagent_tui.widgets.job_table",
    "heroagent_tui.widgets.heroscript_area",
    "heroagent_tui.bridge",
]


@pytest.mark.parametrize("module", SCREENS_AND_WIDGETS)
def test_a_screen_loads_only_the_api_and_the_events(module: str) -> None:
    # The import contract says so statically; this checks what really gets loaded.
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('core.'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = result.stdout.split()
    assert {"core.api", "core.events"} & set(loaded)  # it does load the door or the events
    assert [m for m in loaded if not m.startswith(("core.api", "core.events"))] == []


def test_the_engine_does_load_its_parts() -> None:
    # The check above would pass vacuously if importing anything loaded no engine part.
    code = "import sys, core.engine; print('core.jobs.manager' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "True"


HEAVY = ("textual", "fastapi", "uvicorn", "wsgidav", "core.engine")
# What a worker, which owns no history, must not load either.
HISTORY = ("core.ourdb", "core.jobs.manager", "core.jobs.index", "sqlite3")


def _loaded_heavy(code: str) -> list[str]:
    """The heavy modules loaded once `code` has run (reported on stderr: help goes to stdout)."""
    probe = (
        f"{code}\n"
        "import sys\n"
        f"heavy = {HEAVY!r}\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "found = [m for m in heavy if m in sys.modules or ('.' not in m and m in top)]\n"
        "print('loaded:', *found, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("loaded:"))
    return line.split()[1:]


def test_a_worker_loads_neither_the_engine_nor_the_history() -> None:
    # `heroagent worker`'s start-up is part of every drain it joins.
    assert _loaded_heavy("import core.worker") == []
    code = f"import sys, core.worker\nprint(' '.join(m for m in {HISTORY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == []
    # The check would pass vacuously if the probe saw nothing: the engine loads them all.
    loads = code.replace("core.worker", "core.engine")
    engine = subprocess.run(
        [sys.executable, "-c", loads], capture_output=True, text=True, check=True, timeout=60
    )
    assert engine.stdout.split() == list(HISTORY)


def test_the_client_library_imports_light() -> None:
    # An application that imports heroagent gets the config, redis-py and the API's
    # views; no web server, no terminal UI, no engine part.
    assert _loaded_heavy("import heroagent") == []
    code = (
        "import sys, heroagent\n"
        "print(' '.join(m for m in ('core.jobs', 'core.ourdb', 'core.heroscript') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == []


@pytest.mark.parametrize("argv", [["submit", "--help"], ["--help"], ["jobs", "--help"]])
def test_cli_help_imports_light(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from heroagent_tui.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
    )
    assert _loaded_heavy(code) == []


# What the client library and a plain `heroagent submit` must not load: the reason
# they start fast (docs/client.md has the figures). asyncio loads with AsyncClient only.
SLOW = ("redis", "textual", "typer", "pydantic", "rich", "click", "asyncio")


def _loaded_slow(code: str) -> tuple[list[str], int]:
    """The slow packages loaded once `code` has run, and how many modules were loaded."""
    probe = (
        "import atexit, sys\n"
        f"slow = {SLOW!r}\n"
        "atexit.register(lambda: print('loaded:', len(sys.modules), *sorted("
        "{m.split('.')[0] for m in sys.modules} & set(slow)), file=sys.stderr))\n"
        f"{code}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("loaded:"))
    count, *found = line.split()[1:]
    return found, int(count)


def test_the_client_library_loads_no_redis_py_typer_or_textual() -> None:
    found, count = _loaded_slow("import heroagent")
    assert found == []
    # Nor the engine API and the event bus: the client needs the views, shapes and events.
    code = (
        "import sys, heroagent\n"
        "print('core.events.bus' in sys.modules, 'core.api.engine_api' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]
    # The check would pass vacuously if the probe saw nothing: these do load them.
    assert {"redis", "typer"} <= set(_loaded_slow("import redis, typer")[0])
    assert _loaded_slow("from heroagent import AsyncClient")[0] == ["asyncio"]
    assert count > 0


def test_a_submit_loads_no_redis_py_typer_or_textual(tmp_path: Path) -> None:
    # No engine runs: the submit ends unreachable (exit 3), once its code has all loaded.
    argv = ["heroagent", "--config", os.devnull, "--data-dir", str(tmp_path), "submit", "-"]
    code = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "sys.stdin = __import__('io').StringIO('!!core.echo\\n')\n"
        "from heroagent_tui.cli import main\n"
        "main()\n"
    )
    found, _ = _loaded_slow(code)
    assert found == []
    # The same command line through the typer app (as `--help` goes) does load typer.
    assert (
        "typer"
        in _loaded_slow(code.replace("main()", "__import__('heroagent_tui.cli').cli.app()"))[0]
    )


def test_a_worker_command_loads_no_typer(tmp_path: Path) -> None:
    # No server answers: the worker ends unreachable (exit 1), once its code has loaded.
    argv = ["heroagent", "--config", os.devnull, "--data-dir", str(tmp_path)]
    argv += ["--redis-url", "redis://127.0.0.1:1", "worker"]
    code = f"import sys\nsys.argv = {argv!r}\nfrom heroagent_tui.cli import main\nmain()\n"
    found, _ = _loaded_slow(code)
    assert "redis" in found  # it did get as far as the server
    assert [name for name in found if name in ("typer", "pydantic", "click", "textual")] == []


@pytest.mark.parametrize("argv", [["job", "1"], ["jobs"], ["cancel", "1"], ["schedule", "list"]])
def test_the_job_commands_load_no_asyncio_or_redis_py(argv: list[str], tmp_path: Path) -> None:
    # Through typer (only a plain submit skips it), on the same blocking client: no engine
    # runs, so each ends unreachable (exit 3) once its code has all loaded.
    root = ["heroagent", "--config", os.devnull, "--data-dir", str(tmp_path)]
    code = (
        f"import sys\nsys.argv = {[*root, *argv]!r}\nfrom heroagent_tui.cli import main\nmain()\n"
    )
    found, _ = _loaded_slow(code)
    assert "typer" in found  # the probe sees the typer route
    assert {"asyncio", "redis", "textual"} & set(found) == set()
