"""Typed engine configuration: defaults < TOML file < HEROAGENT_* environment < flags."""

from __future__ import annotations

import builtins
import dataclasses
import functools
import os
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

APP_NAME = "heroagent"
ENV_PREFIX = "HEROAGENT_"
# Read by the CLI to find the config file; not a config key itself.
ENV_CONFIG_FILE = "HEROAGENT_CONFIG"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(ValueError):
    """A config value could not be used; the message is one line naming where and what."""


class Source(StrEnum):
    """Where an effective config value came from."""

    DEFAULT = "default"
    FILE = "file"
    ENV = "env"
    FLAG = "flag"


@dataclass
class RedisConfig:
    """The Redis-protocol server: a managed child process, or an external one by URL."""

    tcp_port: int = 6379
    """TCP port of the managed server, on the engine's bind host."""
    unix_socket_path: str = ""
    """Unix socket of the managed server; empty means `<data_dir>/run/valkey.sock`."""
    url: str = ""
    """redis://, rediss:// or unix:// URL of an external server; set, no child is started."""
    server_binary: str = ""
    """Path of valkey-server/redis-server; empty means the bundled one, else PATH."""
    sentinels: list[str] = field(default_factory=list)
    """Sentinels ("host:port") that name the primary; set, no child is started."""
    sentinel_master: str = ""
    """The name the Sentinels monitor the primary under (`sentinel monitor NAME ...`)."""
    sentinel_password: str = ""
    """Password of the Sentinels themselves, when they have one (`requirepass`)."""
    password: str = ""
    """Password of the primary and replicas that the Sentinels name."""


@dataclass
class RetentionConfig:
    """How long ended jobs stay in the history; a sweep purges the rest (docs/ourdb.md)."""

    done: str = ""
    """Done jobs kept: an age ("30d", "12h") or a count of the newest ("100000"); empty: all."""
    error: str = ""
    """Error jobs (dead letters too) kept: an age ("90d") or a count; empty: all."""
    interval: float = 3600.0
    """Seconds between retention sweeps."""


# Units of a retention age.
_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_retention(text: str) -> tuple[str, float] | None:
    """("age", seconds) for "30d", ("keep", n) for "100000", None for ""; else ValueError."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        if int(text) < 1:
            raise ValueError("a count keeps at least 1 job (leave it empty to keep every job)")
        return ("keep", float(int(text)))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is neither an age (30d, 12h, 2w) nor a count (100000)")
    return ("age", float(match[1]) * _AGE_UNITS[match[2].lower()])


@dataclass
class JobsConfig:
    """The job store and the watchdog."""

    ourdb_path: str = ""
    """Directory of the job history database; empty means `<data_dir>/jobsdb`."""
    worker_count: int = 5
    """Jobs run at once by this engine's watchdog; 0 leaves the work to `heroagent worker`."""
    worker_process: bool = True
    """In the terminal app, run those jobs in a child process the engine supervises, so
    their CPU never delays the screen; false runs them on the app's own loop."""
    queue_poll_interval: float = 0.1
    """Seconds; kept for compatibility with the seed's config, fetching blocks instead."""
    max_attempts: int = 3
    """Times a job is handed out before a lost worker makes it fail."""
    lease_seconds: float = 10.0
    """A watchdog that misses its heartbeat this long is presumed dead."""
    drain_seconds: float = 10.0
    """On a stop, how long running jobs may finish before they go back to their queues."""
    rhai_command: str = ""
    """Command that runs RhaiScript from stdin and prints the result; empty: built-in Rhai."""
    retention: RetentionConfig = field(default_factory=RetentionConfig)


@dataclass
class RhaiConfig:
    """Limits of the embedded Rhai interpreter (Rhai's Engine options); 0 means no limit."""

    max_operations: int = 20_000_000
    """Operations (loop turns and calls) one script may run; stops runaway loops."""
    max_call_levels: int = 64
    """How deep function calls may nest."""
    max_expr_depth: int = 64
    """How deep expressions may nest at the top level of a script."""
    max_function_expr_depth: int = 32
    """How deep expressions may nest inside a function."""
    max_string_size: int = 10_000_000
    """Longest string a script may build, in characters."""
    max_array_size: int = 5_000_000
    """Most elements in an array (or bytes in a blob)."""
    max_map_size: int = 100_000
    """Most properties in an object map."""
    max_variables: int = 10_000
    """Most variables one function (or the script body) may declare."""


@dataclass
class AIConfig:
    """The OpenAI-compatible endpoint behind `ai` jobs."""

    base_url: str = ""
    """Base URL of the API (for example http://127.0.0.1:8000/v1); empty: none."""
    model: str = ""
    """Model name sent with each request."""
    api_key: str = ""
    """Bearer token, if the endpoint needs one."""


@dataclass
class ActorsConfig:
    """Where HeroScript actors come from."""

    modules: list[str] = field(default_factory=list)
    """Python modules whose actor classes are registered at start."""
    enable_shell: bool = False
    """Register the shell.run actor (runs commands: off unless you mean it)."""


@dataclass
class WebDAVConfig:
    """The WebDAV file service."""

    host: str = ""
    """Address the WebDAV server binds; empty means the engine's `host`."""
    port: int = 8091
    """TCP port of the WebDAV server (the HTTP UI has 8090)."""
    root: str = ""
    """Folder served over WebDAV; empty means `<data_dir>/webdav`."""
    readonly: bool = False
    """Refuse every write method (PUT, DELETE, MKCOL, MOVE, COPY, PROPPATCH, LOCK)."""
    anonymous: bool = True
    """Allow access without a login when no users are set; honoured only on loopback."""
    users: dict[str, str] = field(default_factory=dict)
    """Logins as `name = "hash"`; make a hash with `heroagent webdav hash-password`."""
    max_body_bytes: int = 1 << 30
    """Largest request body (upload) accepted, in bytes; 0 means no limit."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Extra names accepted in the Host header (a reverse proxy's name); IP literals always pass."""
    header_timeout: float = 10.0
    """Seconds a client may take to send a request's headers; slower ones are dropped (408)."""


@dataclass
class UIConfig:
    """The HTTP UI and JSON API."""

    host: str = ""
    """Address the HTTP UI binds; empty means the engine's `host`."""
    port: int = 8090
    """TCP port of the HTTP UI and JSON API (WebDAV has 8091)."""
    token: str = ""
    """Bearer token the API and the page's login ask for; required beyond loopback."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Extra names accepted in the Host header (a reverse proxy's name); IP literals always pass."""
    max_body_bytes: int = 1 << 20
    """Largest request body accepted, in bytes (bigger gets 413); 0 means no limit."""
    header_timeout: float = 10.0
    """Seconds a client may take to send a request's headers; slower ones are dropped (408)."""
    max_event_streams: int = 32
    """Event streams (/events) open at once; one more is refused with 503."""
    rpc_timeout: float = 60.0
    """Seconds a /rpc call may run before it is answered with a timeout error."""


@dataclass
class TUIConfig:
    """The terminal app."""

    theme: str = ""
    """Theme to start with; empty means the last one chosen in the app (else heroagent-dark)."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Key remaps as `binding-id = "keys"`, for example `"jobs.filter" = "slash,f"`."""


@dataclass(frozen=True)
class ScheduleConfig:
    """One `[schedules.<name>]` table: a periodic job (see docs/schedules.md)."""

    params: str = ""
    topic: str = ""
    cron: str = ""
    every: str = ""
    circle: str = "default"
    params_type: str = "heroscript"
    timeout: float = 60.0
    tz: str = "UTC"
    missed: str = "latest"


@dataclass
class QueueConfig:
    """Defaults for the jobs of one `[queues."<circle>/<topic>"]` queue; a job may override."""

    retries: int = 0
    """Attempts after the first that a failing job gets."""
    backoff: str = "fixed"
    """fixed (wait backoff_base) or exponential (full jitter up to backoff_max)."""
    backoff_base: float = 1.0
    """Seconds: the fixed wait, or the first exponential step."""
    backoff_max: float = 300.0
    """Seconds: the longest wait between attempts."""
    retry_on: list[str] = field(default_factory=lambda: ["failed", "timeout", "worker_lost"])
    """Error kinds that are retried (cancelled never is)."""
    priority: int = 0
    """0-9: the priority of its jobs that name none (higher runs first)."""
    max_active: int = 0
    """At most this many of its jobs active at once, over every worker (0: no limit)."""
    rate: str = ""
    """At most N job starts per period over every worker, e.g. "20/s", "100/m" (empty: no limit)."""


_RETRY_KINDS = ("failed", "timeout", "worker_lost", "dependency_failed")
_RATE_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"(\d{1,9})\s*/\s*(\d{0,9})\s*(ms|s|m|h)")
MAX_RATE_TEXT = 64


def parse_rate(text: str) -> tuple[int, float]:
    """A rate such as "20/s", "100/m", "5/10s" as (starts, period in seconds).

    Raises ValueError naming the text and the form it should take.
    """
    if len(text) > MAX_RATE_TEXT:
        raise ValueError(f"rate is {len(text)} characters; the limit is {MAX_RATE_TEXT}")
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"rate {text!r} is not of the form N/s, N/m, N/h, N/ms or N/10s")
    count, every, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or every < 1:
        raise ValueError(f"rate {text!r} must allow at least one start in a period above 0")
    return count, every * _RATE_UNITS[unit]


def check_limits(max_active: object, rate: object, where: str) -> tuple[int, str]:
    """Check a queue's limits as given (config, API): (max_active, rate) or ValueError."""
    if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 0:
        raise ValueError(f"{where}max_active must be a whole number, 0 (no limit) or more")
    if not isinstance(rate, str):
        raise ValueError(f'{where}rate must be text such as "20/s", got {rate!r}')
    if rate.strip():
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
    return max_active, rate.strip()


def check_priority(priority: object, where: str = "") -> int:
    """A priority 0-9 as given, or ValueError saying what it must be."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise ValueError(
            f"{where}priority must be a whole number from 0 to 9 (higher runs first), "
            f"got {priority!r}"
        )
    return priority


def _queue_config(name: str, table: Any) -> QueueConfig:
    """One `[queues."<circle>/<topic>"]` table, checked."""
    where = f'queues."{name}"'
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name for f in dataclasses.fields(QueueConfig)}
    for key in table:
        if key not in known:
            raise ConfigError(f"key '{where}.{key}' is unknown; use one of {', '.join(known)}")
    try:
        queue = QueueConfig(**table)
        queue.retries = int(queue.retries)
        queue.backoff_base = float(queue.backoff_base)
        queue.backoff_max = float(queue.backoff_max)
        queue.retry_on = [str(kind) for kind in queue.retry_on]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if queue.retries < 0 or queue.backoff_base < 0 or queue.backoff_max < 0:
        raise ConfigError(f"{where}: retries and backoff times must not be negative")
    try:
        check_priority(queue.priority, f"{where}.")
        check_limits(queue.max_active, queue.rate, f"{where}.")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    queue.rate = queue.rate.strip()
    if queue.backoff not in ("fixed", "exponential"):
        raise ConfigError(f"{where}.backoff must be fixed or exponential, not {queue.backoff!r}")
    for kind in queue.retry_on:
        if kind not in _RETRY_KINDS:
            raise ConfigError(f"{where}.retry_on: {kind!r} is not one of {', '.join(_RETRY_KINDS)}")
    return queue


@dataclass
class Config:
    """The effective configuration of one engine."""

    data_dir: str = ""
    """Where everything the engine keeps lives; empty means the platform's user data dir."""
    host: str = "127.0.0.1"
    """Address every server binds; beyond loopback, servers require credentials."""
    log_level: str = "info"
    """debug, info, warning or error."""
    enable_redis: bool = True
    """Start (or connect to) the Redis-protocol server."""
    enable_webdav: bool = True
    """Serve the data dir's webdav/ folder over WebDAV."""
    enable_ui: bool = True
    """Serve the HTTP UI and JSON API."""
    enable_jobs: bool = True
    """Run the job manager and the watchdog."""
    redis: RedisConfig = field(default_factory=RedisConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    webdav: WebDAVConfig = field(default_factory=WebDAVConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    ai: AIConfig = field(default_factory=AIConfig)
    actors: ActorsConfig = field(default_factory=ActorsConfig)
    rhai: RhaiConfig = field(default_factory=RhaiConfig)
    tui: TUIConfig = field(default_factory=TUIConfig)
    # `[schedules.<name>]` tables: named, so not part of the fixed keys below.
    schedules: dict[str, ScheduleConfig] = field(
        default_factory=dict, metadata={"named_tables": True}
    )
    # Per-queue job defaults by "<circle>/<topic>", read from the file's [queues] tables
    # only (not a dotted key: queue names are open-ended).
    queues: dict[str, QueueConfig] = field(default_factory=dict, metadata={"named_tables": True})

    # Derived paths, so every service agrees on where things live.
    @property
    def data_path(self) -> Path:
        """The data directory, resolved."""
        if self.data_dir:
            return Path(self.data_dir).expanduser().resolve()
        import platformdirs  # here: a CLI command given --data-dir need not load it

        return Path(platformdirs.user_data_dir(APP_NAME)).resolve()

    @property
    def ourdb_dir(self) -> Path:
        """Directory of the job history database."""
        if self.jobs.ourdb_path:
            return Path(self.jobs.ourdb_path).expanduser().resolve()
        return self.data_path / "jobsdb"

    @property
    def is_loopback(self) -> bool:
        """True when servers bind only to this machine."""
        return is_loopback_host(self.host)

    @property
    def webdav_host(self) -> str:
        """The address the WebDAV server binds."""
        return self.webdav.host or self.host

    @property
    def ui_host(self) -> str:
        """The address the HTTP UI binds."""
        return self.ui.host or self.host

    @property
    def webdav_root(self) -> Path:
        """The folder served over WebDAV; file actions are confined to it."""
        if self.webdav.root:
            return Path(self.webdav.root).expanduser().resolve()
        return self.data_path / "webdav"


def is_loopback_host(host: str) -> bool:
    """True when `host` reaches only this machine."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


_LOG_LEVELS = ("debug", "info", "warning", "error")


def default_config_file() -> Path:
    """The config file read when no --config is given."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


@dataclass(frozen=True)
class KeySpec:
    """One settable key: its dotted name, type and help line."""

    key: str
    type: type
    # The dataclass that declares the key, whose source holds its help line.
    owner: builtins.type

    @property
    def doc(self) -> str:
        """The key's help line, from the attribute docstring in the source."""
        return _field_docs(self.owner).get(self.key.rpartition(".")[2], "")

    @property
    def env_name(self) -> str:
        """The HEROAGENT_* environment variable that sets this key."""
        return ENV_PREFIX + self.key.replace(".", "_").upper()


@functools.cache
def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass, read from its source when first asked for.

    Not at import: reading the source takes tens of milliseconds, and a client or a
    CLI command that only loads a config never shows a help line.
    """
    import inspect

    docs: dict[str, str] = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return docs
    for match in re.finditer(r"^\s+(\w+): [^\n]*\n\s+\"\"\"(.+?)\"\"\"", source, re.M | re.S):
        docs[match.group(1)] = " ".join(match.group(2).split())
    return docs


def _walk_keys(cls: type, prefix: str = "") -> Iterator[KeySpec]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        # Named tables ([schedules.<name>], [queues."<circle>/<topic>"]) have open-ended
        # keys: they are read from the file's tables, not walked as fixed keys.
        if f.metadata.get("named_tables"):
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _walk_keys(typing.cast(type, hint), f"{prefix}{f.name}.")
        else:
            yield KeySpec(f"{prefix}{f.name}", typing.cast(type, hint), cls)


KEYS: dict[str, KeySpec] = {spec.key: spec for spec in _walk_keys(Config)}
# Every table a key lives in, nested ones too (`jobs`, `jobs.retention`).
SECTIONS = frozenset(k.rsplit(".", i)[0] for k in KEYS for i in range(1, k.count(".") + 1))
_ENV_KEYS = {spec.env_name: spec for spec in KEYS.values()}


def _is_str_table(tp: type) -> bool:
    """True for `dict[str, str]`, the one non-scalar key type (a TOML table of strings)."""
    return typing.get_origin(tp) is dict and typing.get_args(tp) == (str, str)


def _type_name(tp: type) -> str:
    if typing.get_origin(tp) is list:
        return "a list of strings"
    if _is_str_table(tp):
        return "a table of strings"
    return {int: "an integer", float: "a number", bool: "a boolean", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _parse_str_table(spec: KeySpec, text: str) -> dict[str, str]:
    """Read `name:value,name2:value2` (the environment's spelling of a table)."""
    table: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(
                f"key '{spec.key}' expects name:value pairs separated by commas, got {item!r}"
            )
        table[name.strip()] = value.strip()
    return table


def _coerce(spec: KeySpec, value: Any, *, from_text: bool) -> Any:
    """Convert a raw value to the key's type, or raise ConfigError (without location)."""
    tp = spec.type
    if typing.get_origin(tp) is list:
        if from_text and isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
    if _is_str_table(tp):
        if from_text and isinstance(value, str):
            return _parse_str_table(spec, value)
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return dict(value)
    elif from_text and isinstance(value, str):
        text = value.strip()
        if tp is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif tp is int:
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text)
        elif tp is float:
            try:
                return float(text)
            except ValueError:
                pass
        elif tp is str:
            return value
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif spec.key in _RETENTION_KEYS and type(value) is int:
        return str(value)  # `done = 100000` in TOML: a count is as good as its text
    elif isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"key '{spec.key}' expects {_type_name(tp)}, got {value!r}")


_RETENTION_KEYS = ("jobs.retention.done", "jobs.retention.error")


def _validate(spec: KeySpec, value: Any) -> None:
    """Range checks that a type alone cannot express."""
    if spec.key in _RETENTION_KEYS:
        try:
            parse_retention(value)
        except ValueError as exc:
            raise ConfigError(f"key '{spec.key}': {exc}") from None
    if spec.key == "jobs.retention.interval" and value <= 0:
        raise ConfigError(f"key '{spec.key}' expects a positive number of seconds, got {value}")
    if spec.key.endswith("port") and not 0 <= value <= 65535:
        raise ConfigError(f"key '{spec.key}' expects a port number 0-65535, got {value}")
    if spec.key == "jobs.worker_count" and value < 0:
        raise ConfigError(f"key '{spec.key}' expects 0 or more workers, got {value}")
    if spec.key == "jobs.max_attempts" and value < 1:
        raise ConfigError(f"key '{spec.key}' expects at least 1 attempt, got {value}")
    if spec.key == "jobs.drain_seconds" and value < 0:
        raise ConfigError(f"key '{spec.key}' expects 0 (no wait) or more seconds, got {value}")
    if spec.key == "jobs.lease_seconds" and value <= 0:
        raise ConfigError(f"key '{spec.key}' expects a positive number of seconds, got {value}")
    if spec.key in ("webdav.header_timeout", "ui.header_timeout", "ui.rpc_timeout") and value <= 0:
        raise ConfigError(f"key '{spec.key}' expects a positive number of seconds, got {value}")
    if spec.key == "jobs.queue_poll_interval" and value <= 0:
        raise ConfigError(f"key '{spec.key}' expects a positive number of seconds, got {value}")
    if spec.key == "log_level" and value not in _LOG_LEVELS:
        raise ConfigError(f"key 'log_level' expects one of {', '.join(_LOG_LEVELS)}, got {value!r}")
    if spec.key == "ui.max_event_streams" and value < 1:
        raise ConfigError(f"key '{spec.key}' expects at least 1 stream, got {value}")
    if spec.key.startswith("rhai.") and value < 0:
        raise ConfigError(f"key '{spec.key}' expects 0 (no limit) or more, got {value}")
    if spec.key in ("webdav.max_body_bytes", "ui.max_body_bytes") and value < 0:
        raise ConfigError(f"key '{spec.key}' expects 0 (no limit) or more bytes, got {value}")
    if spec.key == "webdav.users":
        for name in value:
            # Basic auth splits "name:password" at the first colon.
            if not name or ":" in name or not name.isprintable():
                raise ConfigError(f"key 'webdav.users' has an invalid user name {name!r}")
    if spec.key == "redis.url" and value:
        _check_redis_url(value)
    if spec.key == "redis.sentinels":
        _check_sentinels(value)
    if spec.key == "redis.sentinel_master" and not re.fullmatch(r"[\w.-]{0,64}", value):
        raise ConfigError(
            "key 'redis.sentinel_master' expects a name of letters, digits, '.', '_' or '-' "
            f"(64 at most), got {value[:100]!r}"
        )


MAX_SENTINELS = 32


def _check_sentinels(addresses: list[str]) -> None:
    if len(addresses) > MAX_SENTINELS:
        raise ConfigError(
            f"key 'redis.sentinels' expects at most {MAX_SENTINELS} addresses, got {len(addresses)}"
        )
    for address in addresses:
        host, port = split_host_port(address)
        if not host or port is None:
            raise ConfigError(
                f"key 'redis.sentinels' expects host:port addresses, got {address[:100]!r}"
            )


def split_host_port(address: str) -> tuple[str, int | None]:
    """`host:port` (or `[v6]:port`) as its host and port; None for a port that is no port."""
    host, _, port = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not re.fullmatch(r"\d{1,5}", port) or not 0 < int(port) <= 65535:
        return host, None
    return host, int(port)


def _check_whole(config: Config) -> None:
    """Checks across keys, once every source is read: one line naming the keys."""
    redis = config.redis
    if redis.sentinels and not redis.sentinel_master:
        raise ConfigError(
            "key 'redis.sentinels' needs 'redis.sentinel_master', the name the Sentinels "
            "monitor the primary under"
        )
    if redis.sentinel_master and not redis.sentinels:
        raise ConfigError("key 'redis.sentinel_master' needs 'redis.sentinels' (host:port list)")
    if redis.sentinels and redis.url:
        raise ConfigError(
            "keys 'redis.url' and 'redis.sentinels' are both set; use one: the Sentinels "
            "name the server"
        )


def _closest(word: str, choices: list[str]) -> list[str]:
    """The one choice nearest `word`, if any is near (for "did you mean" hints)."""
    import difflib  # only when something is misspelt

    return difflib.get_close_matches(word, choices, n=1)


def _unknown(key: str) -> ConfigError:
    close = _closest(key, [*KEYS, *SECTIONS])
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"key '{key}' is unknown{hint}")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key in SECTIONS:
            yield from _flatten(value, f"{key}.")
        else:
            yield key, value


@dataclass
class LoadedConfig:
    """A config plus where each value came from, for `heroagent config show`."""

    config: Config
    sources: dict[str, Source]
    file: Path | None

    def get(self, key: str) -> Any:
        """The effective value of a dotted key."""
        obj: Any = self.config
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def describe_source(self, key: str) -> str:
        """Human words for where a value came from."""
        source = self.sources.get(key, Source.DEFAULT)
        if source is Source.FILE:
            return f"file {self.file}"
        if source is Source.ENV:
            return f"env {KEYS[key].env_name}"
        return source.value


def _set(config: Config, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    obj: Any = config
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def _read_toml(path: Path) -> dict[str, Any]:
    """A config file's table; one line naming the file when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if not text.strip():
        return {}  # an empty file (or /dev/null): no need to load the parser
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(
    file: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    file_required: bool = False,
) -> LoadedConfig:
    """Build the effective config.

    Args:
        file: The TOML file to read; None reads the default file if it exists.
        env: The environment to read HEROAGENT_* from (defaults to os.environ).
        flags: Dotted keys set on the command line; None values are ignored.
        file_required: Raise if `file` does not exist (true when the user named it).

    Raises:
        ConfigError: One line naming the source, the key and what was expected.
    """
    config = Config()
    sources: dict[str, Source] = {}
    path = file if file is not None else default_config_file()
    used_file: Path | None = None

    if path.exists():
        used_file = path
        table = _read_toml(path)
        queues = table.pop("queues", {})
        try:
            config.schedules = _schedules(table.pop("schedules", {}))
            if not isinstance(queues, dict):
                raise ConfigError("queues must be a table of queue tables")
            config.queues = {name: _queue_config(name, t) for name, t in queues.items()}
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        for key, raw in _flatten(table):
            try:
                spec = KEYS.get(key)
                if spec is None:
                    raise _unknown(key)
                value = _coerce(spec, raw, from_text=False)
                _validate(spec, value)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            _set(config, key, value)
            sources[key] = Source.FILE
    elif file_required:
        raise ConfigError(f"{path}: config file does not exist")

    environ = os.environ if env is None else env
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        spec = _ENV_KEYS.get(name)
        try:
            if spec is None:
                close = _closest(name, list(_ENV_KEYS))
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(f"variable is not a config key{hint}")
            value = _coerce(spec, raw, from_text=True)
            _validate(spec, value)
        except ConfigError as exc:
            raise ConfigError(f"environment {name}: {exc}") from None
        _set(config, spec.key, value)
        sources[spec.key] = Source.ENV

    for key, raw in (flags or {}).items():
        if raw is None:
            continue
        spec = KEYS[key]
        try:
            value = _coerce(spec, raw, from_text=isinstance(raw, str))
            _validate(spec, value)
        except ConfigError as exc:
            raise ConfigError(f"command line: {exc}") from None
        _set(config, key, value)
        sources[key] = Source.FLAG

    _check_whole(config)
    return LoadedConfig(config, sources, used_file)


_SCHEDULE_TYPES = {
    f.name: f.type for f in dataclasses.fields(ScheduleConfig)
}  # the field types as written ("str", "float"): stringified by `from __future__`


def _schedules(table: Any) -> dict[str, ScheduleConfig]:
    """Read the `[schedules.<name>]` tables; the scheduler checks cron and intervals."""
    if not isinstance(table, dict):
        raise ConfigError("key 'schedules' must be a table of [schedules.<name>] tables")
    found: dict[str, ScheduleConfig] = {}
    for name, item in table.items():
        if not isinstance(item, dict):
            raise ConfigError(f"key 'schedules.{name}' must be a table")
        values: dict[str, Any] = {}
        for key, value in item.items():
            kind = _SCHEDULE_TYPES.get(key)
            if kind is None:
                close = _closest(key, list(_SCHEDULE_TYPES))
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"key 'schedules.{name}.{key}' is unknown{hint}")
            if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
                value = float(value)
            elif kind == "str" and isinstance(value, str):
                pass
            else:
                raise ConfigError(f"key 'schedules.{name}.{key}' expects a {kind}, got {value!r}")
            values[key] = value
        if bool(values.get("cron")) == bool(values.get("every")):
            raise ConfigError(f"schedule '{name}' needs exactly one of 'cron' or 'every'")
        if not values.get("topic"):
            raise ConfigError(f"schedule '{name}' needs a 'topic'")
        found[name] = ScheduleConfig(**values)
    return found


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def default_config_text() -> str:
    """A commented TOML file holding every key at its default."""
    defaults = LoadedConfig(Config(), {}, None)
    lines = [
        "# HeroAgent configuration.",
        "# Precedence: defaults < this file < HEROAGENT_* environment < command-line flags.",
        "# Unknown keys are errors. Each key is shown at its default, commented out.",
        "",
    ]
    section = ""
    for spec in KEYS.values():
        sect, _, name = spec.key.rpartition(".")
        if sect != section:
            section = sect
            lines += ["", f"[{sect}]"]
        lines.append(f"# {spec.doc} (env {spec.env_name})")
        lines.append(f"# {name} = {_toml_value(defaults.get(spec.key))}")
    return "\n".join(lines).rstrip() + "\n"


def _check_redis_url(url: str) -> None:
    """Refuse a URL the engine cannot use; the error shows it with its password masked."""
    import urllib.parse

    shown = mask_secret("redis.url", url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"key 'redis.url' expects a redis://, rediss:// or unix:// URL, got {shown!r}"
        )
    # redis-py takes the URL's protocol over the engine's own choice (RESP2), and RESP3's
    # replies, asked for by name, have shapes the engine does not read.
    asked = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("protocol", [])
    refused = [protocol for protocol in asked if protocol != "2"]
    if refused:
        raise ConfigError(
            f"key 'redis.url' asks for protocol={refused[0]} ({shown!r}); the engine speaks "
            "RESP2, which every Redis and Valkey server does: leave protocol out of the URL"
        )


# Keys whose values are credentials: shown masked unless asked for.
SECRET_KEYS = frozenset({"redis.password", "redis.sentinel_password", "ai.api_key", "ui.token"})
MASK = "********"


def mask_secret(key: str, value: Any) -> Any:
    """The value as it may be shown: a set credential masked, a URL's password too."""
    if key in SECRET_KEYS and value:
        return MASK
    if key == "redis.url" and isinstance(value, str) and value:
        import urllib.parse

        parts = urllib.parse.urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return value


def iter_effective(loaded: LoadedConfig, *, reveal: bool = False) -> Iterator[tuple[str, Any, str]]:
    """Every key with its effective value and source words, in declaration order.

    Credentials are masked unless `reveal`: the output ends up in terminals, logs and
    bug reports.
    """
    for key in KEYS:
        value = loaded.get(key)
        yield key, value if reveal else mask_secret(key, value), loaded.describe_source(key)
