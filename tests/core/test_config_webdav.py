"""The webdav config keys and the one table-valued key type (`webdav.users`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import KEYS, ConfigError, Source, default_config_text, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_webdav_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "a.toml", env={}, flags={"data_dir": str(tmp_path)}).config
    assert config.webdav.port == 8091
    assert config.webdav.port != config.ui.port
    assert config.webdav_host == "127.0.0.1"
    assert config.webdav_root == tmp_path.resolve() / "webdav"
    assert (config.webdav.readonly, config.webdav.anonymous) == (False, True)
    assert config.webdav.users == {}
    assert config.webdav.max_body_bytes == 1 << 30


def test_users_from_a_toml_table(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml",
        '[webdav]\nhost = "0.0.0.0"\nroot = "/srv/dav"\n'
        '[webdav.users]\nalice = "scrypt$1"\n"bob smith" = "scrypt$2"\n',
    )
    loaded = load_config(file, env={})
    assert loaded.config.webdav.users == {"alice": "scrypt$1", "bob smith": "scrypt$2"}
    assert loaded.sources["webdav.users"] is Source.FILE
    assert loaded.config.webdav_host == "0.0.0.0"
    assert loaded.config.webdav_root == Path("/srv/dav")


def test_users_as_an_inline_table(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[webdav]\nusers = { alice = "h1" }\n')
    assert load_config(file, env={}).config.webdav.users == {"alice": "h1"}


def test_users_from_the_environment(tmp_path: Path) -> None:
    env = {"HEROAGENT_WEBDAV_USERS": "alice:scrypt$16384$8$1$c2FsdA==$aGFzaA==, bob:h2,"}
    loaded = load_config(tmp_path / "a.toml", env=env)
    assert loaded.config.webdav.users == {
        "alice": "scrypt$16384$8$1$c2FsdA==$aGFzaA==",
        "bob": "h2",
    }
    assert loaded.sources["webdav.users"] is Source.ENV
    assert (
        load_config(tmp_path / "a.toml", env={"HEROAGENT_WEBDAV_USERS": ""}).config.webdav.users
        == {}
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[webdav]\nusers = "alice"\n',
            "key 'webdav.users' expects a table of strings, got 'alice'",
        ),
        ("[webdav.users]\nalice = 1\n", "key 'webdav.users' expects a table of strings"),
        ('[webdav.users]\n"a:b" = "h"\n', "key 'webdav.users' has an invalid user name 'a:b'"),
        ("[webdav]\nmax_body_bytes = -1\n", "expects 0 (no limit) or more bytes"),
        ('[webdav]\nreadonly = "yes"\n', "key 'webdav.readonly' expects a boolean"),
        ("[webdav]\nreadnoly = true\n", "(did you mean 'webdav.readonly'?)"),
    ],
)
def test_bad_webdav_values(tmp_path: Path, toml: str, message: str) -> None:
    file = write(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_env_table_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "a.toml", env={"HEROAGENT_WEBDAV_USERS": "alice"})
    assert str(info.value) == (
        "environment HEROAGENT_WEBDAV_USERS: key 'webdav.users' expects name:value pairs "
        "separated by commas, got 'alice'"
    )


def test_default_file_shows_the_users_table() -> None:
    assert "# users = {}" in default_config_text()
    assert KEYS["webdav.users"].env_name == "HEROAGENT_WEBDAV_USERS"


def test_webdav_port_flag(tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "a.toml", env={}, flags={"webdav.port": "9000"})
    assert loaded.config.webdav.port == 9000
    assert loaded.sources["webdav.port"] is Source.FLAG
