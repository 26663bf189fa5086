"""`heroagent redis-cli`: valkey-cli pointed at the engine's server, already logged in."""

from __future__ import annotations

import os

import typer

from heroagent_tui.commands.common import fail, state_of


def redis_cli(ctx: typer.Context) -> None:
    """Run valkey-cli (or redis-cli) against the engine's server; extra arguments pass through.

    For example `heroagent redis-cli keys 'ha:*'`, or no arguments for a prompt. The
    password comes from the data dir and goes in REDISCLI_AUTH, never on the command line.
    """
    # Here, not at the top: the typer app imports every command, and the job commands
    # (heroagent job, jobs, cancel, ...) must not pay for redis-py and asyncio.
    from redis.exceptions import RedisError

    from core.events.bus import EventBus
    from core.redis_server.binary import ServerBinaryNotFound, find_cli_binary
    from core.redis_server.service import RedisService

    config = state_of(ctx).load().config
    service = RedisService(config, EventBus())
    try:
        binary = find_cli_binary(config.redis.server_binary)
    except ServerBinaryNotFound as exc:
        fail(str(exc))
    if not service.external and service.password is None:
        fail(f"no password in {service.password_file}; has an engine run with this data dir?")
    try:
        args, env = service.cli_invocation()
    except RedisError as exc:  # no Sentinel answered, or none knows the primary
        fail(f"cannot find the primary through {service.address()}: {exc}")
    argv = [str(binary), *args, *ctx.args]
    # exec: the client owns the terminal, signals and exit code from here on.
    os.execve(binary, argv, {**os.environ, **env})
