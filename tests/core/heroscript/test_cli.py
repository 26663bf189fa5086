"""The command line: check, fmt, run, actors; and a plugin installed through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from tests.helpers import check_fails_then_passes, run_heroagent

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return run_heroagent(*args, python=python, cwd=REPO)


def test_check_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hero"
    good = (tmp_path / "good.md", "# Doc\n\n!!fake.return_success message:hi\n")
    out = check_fails_then_passes(
        _cli, "heroscript", (bad, "!!fake.sleep seconds:x\n!!a.b c-d:1\n"), good
    )
    assert f"{bad}:1:14: fake.sleep: parameter 'seconds' expects float, got 'x'" in out
    assert f"{bad}:2:8: key 'c-d' has a character not allowed in keys" in out
    assert "       ^" in out
    syntax = _cli("heroscript", "check", "--syntax-only", str(bad))
    assert syntax.stdout.count(str(bad)) == 1


def test_fmt_prints_and_writes(tmp_path: Path) -> None:
    script = tmp_path / "s.hero"
    script.write_text("Intro\n!!fake.return_success   message:'hi'\n")
    out = _cli("heroscript", "fmt", str(script))
    assert out.stdout == "Intro\n!!fake.return_success message:hi\n"
    assert _cli("heroscript", "fmt", "--write", str(script)).returncode == 0
    assert script.read_text() == out.stdout


def test_run_prints_results(tmp_path: Path) -> None:
    script = tmp_path / "s.hero"
    script.write_text("!!fake.return_success message:hello\n!!core.echo message:'two words'\n")
    out = _cli("heroscript", "run", str(script))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        'line 1: fake.return_success -> "hello"',
        'line 2: core.echo -> "two words"',
    ]
    as_json = json.loads(_cli("heroscript", "run", "--json", str(script)).stdout)
    assert [r["result"] for r in as_json["results"]] == ["hello", "two words"]


def test_run_misspelt_action_reports_line_and_closest(tmp_path: Path) -> None:
    script = tmp_path / "typo.hero"
    script.write_text("!!fake.return_success message:a\n\n!!fake.retrun_success message:b\n")
    out = _cli("heroscript", "run", str(script))
    assert out.returncode == 1
    assert "line 3: fake.retrun_success" in out.stderr
    assert "did you mean 'fake.return_success'?" in out.stderr
    # Nothing ran: the whole script is checked first.
    assert "->" not in out.stdout


def test_run_with_files_root_and_module(tmp_path: Path) -> None:
    script = tmp_path / "f.hero"
    script.write_text("!!file.write path:a.txt content:x\n!!sample.ping\n")
    out = _cli(
        "heroscript",
        "run",
        str(script),
        "--files-root",
        str(tmp_path),
        "--module",
        "tests.core.heroscript.sample_actors",
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a.txt").read_text() == "x"
    assert 'sample.ping -> "pong"' in out.stdout


def test_actors_lists_actions_and_params() -> None:
    out = _cli("actors")
    assert out.returncode == 0
    assert "!!fake.sleep seconds:float" in out.stdout
    assert "shell" not in out.stdout
    assert "!!shell.run" in _cli("actors", "--enable-shell").stdout
    listing = json.loads(_cli("actors", "--json").stdout)
    assert listing["fake"]["actions"]["sleep"]["params"] == [
        {"name": "seconds", "type": "float", "required": True}
    ]


def test_cli_module_does_not_import_textual() -> None:
    code = "import sys, heroagent_tui.commands.heroscript; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# The plugin builds with a 20-line in-tree PEP 517 backend, so installing it needs
# neither the network nor setuptools/wheel in the test machine's venv.
PLUGIN_PYPROJECT = """
[build-system]
requires = []
build-backend = "tinybuild"
backend-path = ["."]

[project]
name = "heroagent-demo-plugin"
version = "0.1.0"

[project.entry-points."heroagent.actors"]
demo = "heroagent_demo_plugin:DemoActor"
"""

PLUGIN_BACKEND = '''
"""A minimal PEP 517 backend that packs one module and its entry points."""
import base64, hashlib, zipfile

NAME, VERSION = "heroagent_demo_plugin", "0.1.0"
DIST = f"{NAME}-{VERSION}.dist-info"
FILES = {
    f"{NAME}.py": open(f"{NAME}.py", "rb").read(),
    f"{DIST}/METADATA": b"Metadata-Version: 2.1\\nName: heroagent-demo-plugin\\nVersion: 0.1.0\\n",
    f"{DIST}/WHEEL": b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    f"{DIST}/entry_points.txt": b"[heroagent.actors]\\ndemo = heroagent_demo_plugin:DemoActor\\n",
}


def _hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    record = "".join(f"{path},{_hash(data)},{len(data)}\\n" for path, data in FILES.items())
    with zipfile.ZipFile(f"{wheel_directory}/{name}", "w") as wheel:
        for path, data in FILES.items():
            wheel.writestr(path, data)
        wheel.writestr(f"{DIST}/RECORD", record + f"{DIST}/RECORD,,\\n")
    return name
'''

PLUGIN_MODULE = '''
"""A plugin actor."""


class DemoActor:
    """Greets from a plugin."""

    def greet(self, name: str, times: int = 1) -> str:
        """Greet someone."""
        return " ".join([f"hello {name}"] * times)
'''


def test_plugin_installed_through_entry_point(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (plugin / "heroagent_demo_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (plugin / "tinybuild.py").write_text(PLUGIN_BACKEND)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The temp venv sees this checkout and its dependencies, but not the plugin.
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "heroagent_repo.pth").write_text(f"{REPO}\n{ours}\n")
    assert "demo" not in _cli("actors", python=python).stdout
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            str(plugin),
        ],
        check=True,
        env=env,
        timeout=120,
    )
    listing = _cli("actors", python=python)
    assert listing.returncode == 0, listing.stderr
    assert "demo  (entry point heroagent_demo_plugin:DemoActor)" in listing.stdout
    assert "!!demo.greet name:str times:int?" in listing.stdout
    script = tmp_path / "p.hero"
    script.write_text("!!demo.greet name:World times:2\n")
    out = _cli("heroscript", "run", str(script), python=python)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'line 1: demo.greet -> "hello World hello World"'
    # Not in this interpreter: the plugin lives only in the temporary venv.
    assert "demo" not in _cli("actors").stdout


def test_bench_runs_quick() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.heroscript", "--quick"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
