"""Sentinel: config checks, and the engine, client and CLI following a failover on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from bench.launch import heroagent_argv
from core.config import ConfigError, load_config
from core.engine import Engine
from core.events.bus import EventBus
from core.redis_server.service import RedisService
from heroagent import AsyncClient, Client
from tests.helpers import async_poll, free_port, run_heroagent
from tests.netlab.hosts import ROOT
from tests.sentinels import SentinelSet


def _load(env: dict[str, str]) -> object:
    return load_config(Path(os.devnull), env=env).config


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HEROAGENT_REDIS_SENTINELS": "10.0.0.1:26379"}, "needs 'redis.sentinel_master'"),
        ({"HEROAGENT_REDIS_SENTINEL_MASTER": "m"}, "needs 'redis.sentinels'"),
        (
            {"HEROAGENT_REDIS_SENTINELS": "10.0.0.1", "HEROAGENT_REDIS_SENTINEL_MASTER": "m"},
            "expects host:port addresses, got '10.0.0.1'",
        ),
        (
            {"HEROAGENT_REDIS_SENTINELS": "h:70000", "HEROAGENT_REDIS_SENTINEL_MASTER": "m"},
            "expects host:port addresses",
        ),
        (
            {
                "HEROAGENT_REDIS_SENTINELS": "h:1",
                "HEROAGENT_REDIS_SENTINEL_MASTER": "m",
                "HEROAGENT_REDIS_URL": "redis://h:6379",
            },
            "'redis.url' and 'redis.sentinels' are both set",
        ),
        (
            {"HEROAGENT_REDIS_SENTINELS": "h:1", "HEROAGENT_REDIS_SENTINEL_MASTER": "a b"},
            "key 'redis.sentinel_master' expects a name",
        ),
        (
            {
                "HEROAGENT_REDIS_SENTINELS": ",".join(f"h:{i}" for i in range(1, 40)),
                "HEROAGENT_REDIS_SENTINEL_MASTER": "m",
            },
            "at most 32 addresses",
        ),
    ],
)
def test_sentinel_settings_are_checked_with_one_line_errors(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_sentinel_settings_load_from_the_environment_and_ipv6_addresses_parse() -> None:
    config = load_config(
        Path(os.devnull),
        env={
            "HEROAGENT_REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380",
            "HEROAGENT_REDIS_SENTINEL_MASTER": "main",
            "HEROAGENT_REDIS_SENTINEL_PASSWORD": "s-secret",
            "HEROAGENT_REDIS_PASSWORD": "secret",
        },
    ).config
    assert config.redis.sentinels == ["10.0.0.1:26379", "[::1]:26380"]
    from core.redis_server.address import sentinel_addresses

    assert sentinel_addresses(config) == [("10.0.0.1", 26379), ("::1", 26380)]


def _subscribers(nodes: SentinelSet) -> int:
    """Subscribers of the events channel on the primary."""
    with nodes.primary.client(nodes.password) as primary:
        return int(primary.pubsub_numsub("heroagent:events")[0][1])


def _cli(data: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        heroagent_argv(data, *args),
        env={**os.environ, "PYTHONPATH": ROOT, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_engine_client_and_cli_follow_a_failover(
    sentinel_set: SentinelSet, engine_config: object, short_tmp: Path
) -> None:
    from core.config import Config

    assert isinstance(engine_config, Config)
    config = sentinel_set.configure(
        replace(
            engine_config,
            enable_webdav=False,
            enable_ui=False,
            jobs=replace(engine_config.jobs, worker_count=2),
        )
    )
    async with Engine(config):
        client = AsyncClient.from_config(config, wait_seconds=20)
        try:
            before = await client.submit("!!core.echo message:before\n")
            assert (await client.wait(before.job_id, timeout=20)).status == "done"

            # A wait under way when the primary dies subscribes again on the new one.
            running = await client.submit("!!fake.sleep seconds:2\n")
            subscribers = await asyncio.to_thread(_subscribers, sentinel_set)
            waiting = asyncio.create_task(client.wait(running.job_id, timeout=60))
            await async_poll(
                lambda: asyncio.to_thread(lambda: _subscribers(sentinel_set) > subscribers),
                10,
                "the wait to subscribe",
            )
            sentinel_set.primary.kill()
            await asyncio.to_thread(sentinel_set.wait_promoted)
            assert (await waiting).status == "done"

            after = await client.submit("!!core.echo message:after\n")
            assert (await client.wait(after.job_id, timeout=30)).status == "done"

            # The blocking client and the CLI find the new primary through the Sentinels.
            def blocking_get() -> str:
                # In a thread: the engine answers from this test's event loop.
                with Client.from_config(config, wait_seconds=20) as blocking:
                    return blocking.get(before.job_id).status

            assert await asyncio.to_thread(blocking_get) == "done"
            # `heroagent redis-cli` is pointed at the new primary.
            service = RedisService(config, EventBus())
            args, env = await asyncio.to_thread(service.cli_invocation)
            assert args == ["-h", "127.0.0.1", "-p", str(sentinel_set.replica.port)]
            assert env == {"REDISCLI_AUTH": sentinel_set.password}
            script = short_tmp / "cli.hero"
            script.write_text("!!core.echo message:from-the-cli\n")
            out = await asyncio.to_thread(
                _cli, short_tmp / "cli-data", sentinel_set.env(), "submit", "--json", str(script)
            )
            job_id = json.loads(out)["job_id"]
            assert (await client.wait(job_id, timeout=30)).status == "done"
            listed = await asyncio.to_thread(
                _cli, short_tmp / "cli-data", sentinel_set.env(), "job", str(after.job_id), "--json"
            )
            assert json.loads(listed)["status"] == "done"
        finally:
            await client.aclose()


async def test_redis_info_names_the_primary_and_counts_a_failover(
    sentinel_set: SentinelSet, engine_config: object
) -> None:
    from core.config import Config

    assert isinstance(engine_config, Config)
    config = sentinel_set.configure(replace(engine_config, enable_webdav=False, enable_ui=False))
    async with Engine(config) as engine:
        before = await engine.api.redis_info()
        assert (before.primary, before.failovers) == (f"127.0.0.1:{sentinel_set.primary.port}", 0)
        assert before.replicas == 1
        sentinel_set.primary.kill()
        await asyncio.to_thread(sentinel_set.wait_promoted)
        promoted = f"127.0.0.1:{sentinel_set.replica.port}"

        async def moved() -> bool:
            try:
                return (await engine.api.redis_info()).primary == promoted
            except (RedisError, OSError):  # the promoted server may still refuse for a moment
                return False

        await async_poll(moved, 30, "the new primary to show")
        after = await engine.api.redis_info()
        assert (after.failovers, after.replicas) == (1, 0)


def test_a_worker_with_no_sentinel_answering_says_so_in_words(short_tmp: Path) -> None:
    port = free_port()  # nothing listens there: no Sentinel can name a primary
    env = {
        **os.environ,
        "HEROAGENT_REDIS_SENTINELS": f"127.0.0.1:{port}",
        "HEROAGENT_REDIS_SENTINEL_MASTER": "gone",
    }
    argv = ("--config", os.devnull, "--data-dir", str(short_tmp / "data"), "worker")
    result = run_heroagent(*argv, env=env, timeout=30)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    assert errors[0].endswith(
        f"cannot reach sentinel:gone@127.0.0.1:{port}: no Sentinel (127.0.0.1:{port}) "
        "names a primary for 'gone': they are down, unreachable, or none of them monitors "
        "that name"
    )
