"""Config precedence, sources and one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.config import (
    KEYS,
    Config,
    ConfigError,
    Source,
    default_config_text,
    load_config,
)
from tests.helpers import run_heroagent


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_mirror_the_seed(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml", env={}).config
    assert config.redis.tcp_port == 6379
    assert config.jobs.worker_count == 5
    assert config.jobs.queue_poll_interval == pytest.approx(0.1)
    assert (config.enable_redis, config.enable_webdav, config.enable_ui, config.enable_jobs) == (
        True,
        True,
        True,
        True,
    )
    assert config.host == "127.0.0.1"


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml",
        'host = "127.0.0.2"\n[redis]\ntcp_port = 7000\n[jobs]\nworker_count = 3\n',
    )
    loaded = load_config(
        file,
        env={"HEROAGENT_REDIS_TCP_PORT": "7001", "HEROAGENT_JOBS_WORKER_COUNT": "4"},
        flags={"redis.tcp_port": 7002, "host": None},
    )
    config = loaded.config
    assert config.host == "127.0.0.2"
    assert config.jobs.worker_count == 4
    assert config.redis.tcp_port == 7002
    assert loaded.sources["host"] is Source.FILE
    assert loaded.sources["jobs.worker_count"] is Source.ENV
    assert loaded.sources["redis.tcp_port"] is Source.FLAG
    assert "redis.url" not in loaded.sources
    assert loaded.describe_source("host") == f"file {file}"
    assert loaded.describe_source("jobs.worker_count") == "env HEROAGENT_JOBS_WORKER_COUNT"


def test_unknown_file_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[redis]\ntcp_prot = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert str(info.value) == (
        f"{file}: key 'redis.tcp_prot' is unknown (did you mean 'redis.tcp_port'?)"
    )


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[redsi]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"key 'redsi' is unknown \(did you mean 'redis'\?\)"):
        load_config(file, env={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[redis]\ntcp_port = "x"\n', "key 'redis.tcp_port' expects an integer, got 'x'"),
        ("enable_ui = 1\n", "key 'enable_ui' expects a boolean, got 1"),
        ("[redis]\ntcp_port = true\n", "key 'redis.tcp_port' expects an integer, got True"),
        ("[redis]\ntcp_port = 70000\n", "expects a port number 0-65535, got 70000"),
        ("[jobs]\nworker_count = -1\n", "expects 0 or more workers"),
        ("[jobs]\ndrain_seconds = -1\n", "key 'jobs.drain_seconds' expects 0 (no wait) or more"),
        ('log_level = "loud"\n', "expects one of debug, info, warning, error"),
        ('[redis]\nurl = "http://x"\n', "expects a redis://, rediss:// or unix:// URL"),
        (
            '[redis]\nurl = "redis://:pw@127.0.0.1:6379/0?protocol=3"\n',
            "asks for protocol=3 ('redis://:********@127.0.0.1:6379/0?protocol=3'); the "
            "engine speaks RESP2",
        ),
        ('[redis]\nurl = "redis://h/0?protocol=3&protocol=2"\n', "asks for protocol=3 ("),
    ],
)
def test_ill_typed_values_name_key_and_type(tmp_path: Path, toml: str, message: str) -> None:
    file = write(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert str(info.value).startswith(f"{file}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[redis\n")
    with pytest.raises(ConfigError, match=rf"^{file}: not valid TOML"):
        load_config(file, env={})


def test_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(tmp_path / "nope.toml", env={}, file_required=True)


def test_env_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "a.toml", env={"HEROAGENT_JOBS_WORKER_COUNT": "many"})
    assert str(info.value) == (
        "environment HEROAGENT_JOBS_WORKER_COUNT: key 'jobs.worker_count' expects an integer, "
        "got 'many'"
    )
    with pytest.raises(ConfigError, match="did you mean HEROAGENT_REDIS_TCP_PORT"):
        load_config(tmp_path / "a.toml", env={"HEROAGENT_REDIS_TCP_PROT": "1"})


def test_env_booleans_and_floats(tmp_path: Path) -> None:
    config = load_config(
        tmp_path / "a.toml",
        env={"HEROAGENT_ENABLE_UI": "off", "HEROAGENT_JOBS_QUEUE_POLL_INTERVAL": "0.25"},
    ).config
    assert config.enable_ui is False
    assert config.jobs.queue_poll_interval == pytest.approx(0.25)


def test_flag_errors_name_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^command line: key 'redis.tcp_port' expects a port"):
        load_config(tmp_path / "a.toml", env={}, flags={"redis.tcp_port": -1})


def test_default_file_text_holds_every_key_and_loads_back(tmp_path: Path) -> None:
    text = default_config_text()
    for spec in KEYS.values():
        assert spec.env_name in text
    # Uncomment every `key = value` line: the result must load and equal the defaults.
    lines = [
        line[2:] if line.startswith("# ") and " = " in line and "(env" not in line else line
        for line in text.splitlines()
    ]
    file = write(tmp_path / "c.toml", "\n".join(lines))
    loaded = load_config(file, env={})
    assert loaded.config == Config()
    assert set(loaded.sources) == set(KEYS)


def test_data_paths_derive_from_data_dir(tmp_path: Path) -> None:
    config = load_config(tmp_path / "a.toml", env={}, flags={"data_dir": str(tmp_path)}).config
    assert config.data_path == tmp_path.resolve()
    assert config.ourdb_dir == tmp_path.resolve() / "jobsdb"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_heroagent(*args, env=env)


def test_cli_config_show_reports_sources(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[jobs]\nworker_count = 2\n")
    result = run_cli("--config", str(file), "--redis-port", "7777", "config", "show", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["file"] == str(file)
    assert shown["keys"]["jobs.worker_count"] == {"value": 2, "source": f"file {file}"}
    assert shown["keys"]["redis.tcp_port"] == {"value": 7777, "source": "flag"}
    assert shown["keys"]["enable_ui"] == {"value": True, "source": "default"}


def test_cli_config_show_masks_credentials_unless_asked(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml",
        '[redis]\nurl = "redis://app:s3cret@db.example:6380/0"\n'
        '[ui]\ntoken = "tok-123"\n[ai]\napi_key = "sk-abc"\n',
    )
    shown = run_cli("--config", str(file), "config", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    keys = json.loads(shown.stdout)["keys"]
    assert keys["redis.url"]["value"] == "redis://app:********@db.example:6380/0"
    assert keys["ui.token"]["value"] == keys["ai.api_key"]["value"] == "********"
    assert keys["redis.password"]["value"] == ""  # unset stays visibly unset
    for secret in ("s3cret", "tok-123", "sk-abc"):
        assert secret not in shown.stdout
    table = run_cli("--config", str(file), "config", "show")
    assert "s3cret" not in table.stdout
    assert "tok-123" not in table.stdout
    revealed = run_cli("--config", str(file), "config", "show", "--json", "--show-secrets")
    assert json.loads(revealed.stdout)["keys"]["ui.token"]["value"] == "tok-123"


def test_cli_config_init_writes_a_loadable_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "config.toml"
    result = run_cli("--config", str(target), "config", "init")
    assert result.returncode == 0, result.stderr
    assert target.read_text() == default_config_text()
    again = run_cli("--config", str(target), "config", "init")
    assert again.returncode == 1
    assert "exists; pass --force" in again.stderr


def test_cli_bad_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[jobs]\nworker_counts = 2\n")
    result = run_cli("--config", str(file), "--serve")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"heroagent: config error: {file}: key 'jobs.worker_counts' is unknown "
        "(did you mean 'jobs.worker_count'?)"
    ]


def test_tui_section_reads_theme_and_keymap(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[tui]\ntheme = "heroagent-light"\nkeymap = { "jobs.filter" = "slash,f" }\n')
    config = load_config(file, env={}).config
    assert config.tui.theme == "heroagent-light"
    assert config.tui.keymap == {"jobs.filter": "slash,f"}


def test_queue_tables_give_retry_defaults(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml",
        '[queues."default/email"]\nretries = 3\nbackoff = "exponential"\n'
        'backoff_base = 2\nbackoff_max = 60\nretry_on = ["failed", "timeout"]\n',
    )
    queue = load_config(file, env={}).config.queues["default/email"]
    assert (queue.retries, queue.backoff, queue.backoff_base, queue.backoff_max) == (
        3, "exponential", 2.0, 60.0
    )  # fmt: skip
    assert queue.retry_on == ["failed", "timeout"]
    assert "queues" not in {key.split(".")[0] for key in KEYS}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[queues."a/b"]\nretries = -1\n', "must not be negative"),
        ('[queues."a/b"]\nbackoff = "random"\n', "fixed or exponential"),
        ('[queues."a/b"]\nretry_on = ["cancelled"]\n', "'cancelled' is not one of"),
        ('[queues."a/b"]\nretires = 1\n', "'queues.\"a/b\".retires' is unknown"),
    ],
)
def test_bad_queue_tables_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.toml", toml), env={})
