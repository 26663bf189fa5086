"""Run Rhai for HeroAgent: actors as ``actor::action(#{..})``, a worker thread, JSON results."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import RhaiConfig
from core.heroscript.actors.registry import ActorRegistry, BoundAction
from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionError
from core.heroscript.names import name_fix
from core.heroscript.runner import call_action
from core.rhai.engine import Engine, Limits
from core.rhai.errors import Pos, RhaiError, RhaiRuntimeError
from core.rhai.runtime import Native, NoMatch, Runtime
from core.rhai.stdlib.maps import to_json_value

# How often a script waiting on an actor checks that it should stop.
_POLL_SECONDS = 0.1
# print/debug lines one script may write to the job log.
MAX_LOG_LINES = 10_000


class ActorCallError(RhaiRuntimeError):
    """An actor action failed; scripts can catch it with try/catch."""

    kind = "ErrorInFunctionCall"


def to_python(v: Any) -> Any:
    """A Rhai value as plain JSON-ready Python (chars as strings, blobs as lists)."""
    return to_json_value(v)


def to_json(v: Any) -> str:
    """The JSON text of a script's value."""
    return json.dumps(to_json_value(v), ensure_ascii=False)


@dataclass
class ActorBridge:
    """Makes every registered action callable from Rhai, on the event loop that owns it.

    ``actor::action(#{param: value})`` binds the map's keys like HeroScript's named
    parameters (converted by the registry's type hints); ``actor::action()`` passes
    none. Positional arguments fill the action's parameters in order.
    """

    registry: ActorRegistry
    ctx: ActionContext
    loop: asyncio.AbstractEventLoop
    runtime: list[Runtime] = field(default_factory=list)

    def resolve(self, ns: str, name: str) -> Native | None:
        """The native behind ``ns::name``, or None when there is no such action."""
        try:
            info = self.registry.lookup(name_fix(ns), name_fix(name))
        except ActionError:
            return None

        def call(*args: Any) -> Any:
            if len(args) == 1 and type(args[0]) is dict:
                values = {k: to_python(v) for k, v in args[0].items()}
            else:
                if len(args) > len(info.params):
                    raise NoMatch
                values = {p.name: to_python(a) for p, a in zip(info.params, args, strict=False)}
            try:
                kwargs = self.registry.bind_values(info, values)
            except ActionError as exc:
                raise ActorCallError(str(exc)) from None
            return self.call(BoundAction(info, kwargs, ()))

        return Native(call)

    def call(self, bound: BoundAction) -> Any:
        """Run the action on the loop and wait, stopping early when the run is stopped."""
        future = asyncio.run_coroutine_threadsafe(call_action(bound, self.ctx), self.loop)
        while True:
            try:
                return future.result(timeout=_POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                rt = self.runtime[0] if self.runtime else None
                if self.ctx.cancelled.is_set() or (rt is not None and rt.stopped):
                    future.cancel()
                    if rt is not None:
                        rt.tick()
                    raise RhaiRuntimeError("cancelled", None, "ErrorTerminated") from None
            except ActionError as exc:
                raise ActorCallError(str(exc)) from None


class LineBudget:
    """Passes the first ``limit`` lines to ``log``, then counts the rest.

    Each line hops to the event loop and may be published, so a script printing in a
    tight loop must not flood the engine.
    """

    def __init__(self, log: Callable[[str], None], limit: int = MAX_LOG_LINES) -> None:
        self.log = log
        self.limit = limit
        self.sent = 0
        self.dropped = 0

    def __call__(self, line: str) -> None:
        if self.sent < self.limit:
            self.sent += 1
            self.log(line)
        else:
            self.dropped += 1

    def close(self) -> None:
        """Say how many lines were left out, if any."""
        if self.dropped:
            self.log(f"({self.dropped} more print/debug lines not logged)")


def make_engine(limits: Limits, log: Callable[[str], None]) -> Engine:
    """An engine whose ``print`` and ``debug`` write lines to ``log``."""

    def on_debug(text: str, pos: Pos) -> None:
        log(f"debug {pos[0]}:{pos[1]}: {text}" if pos[0] else f"debug: {text}")

    return Engine(limits, on_print=log, on_debug=on_debug)


def register_progress(engine: Engine, ctx: ActionContext) -> None:
    """Give scripts ``progress(fraction)`` and ``progress(fraction, message)``."""

    def progress(fraction: Any, message: Any = "") -> None:
        # Numbers as they are: the JSON form would turn NaN into null.
        value = fraction if isinstance(fraction, int | float) else to_python(fraction)
        try:
            ctx.progress(value, to_python(message))
        except (TypeError, ValueError) as exc:
            raise RhaiRuntimeError(str(exc)) from None

    engine.register_fn("progress", progress, 2)
    engine.register_fn("progress", progress, 1)


@dataclass(frozen=True)
class ScriptOutcome:
    """The value of a script as JSON, or the error that stopped it."""

    result: str = ""
    error: RhaiError | None = None


async def run_script(
    script: str,
    registry: ActorRegistry,
    ctx: ActionContext,
    limits: Limits | None = None,
) -> ScriptOutcome:
    """Run a script in its own thread (never on the event loop) with the actors available.

    Cancelling the awaiting task (a job timeout) stops the script at its next counted
    operation; the thread then ends by itself.
    """
    loop = asyncio.get_running_loop()
    lines = LineBudget(ctx.log)
    engine = make_engine(limits or Limits(), lines)
    register_progress(engine, ctx)
    bridge = ActorBridge(registry, ctx, loop)
    engine.namespace_resolver = bridge.resolve
    rt = engine.new_runtime()
    bridge.runtime.append(rt)
    done: asyncio.Future[ScriptOutcome] = loop.create_future()

    def finish(outcome: ScriptOutcome) -> None:
        if not done.done():
            done.set_result(outcome)

    def work() -> None:
        try:
            value = engine.eval(script, rt)
            outcome = ScriptOutcome(result=to_json(value))
        except RhaiError as exc:
            outcome = ScriptOutcome(error=exc)
        except Exception as exc:  # an interpreter bug must not leave the job hanging
            outcome = ScriptOutcome(
                error=RhaiRuntimeError(f"internal error: {type(exc).__name__}: {exc}")
            )
        lines.close()
        loop.call_soon_threadsafe(finish, outcome)

    thread = threading.Thread(target=work, name="rhai-script", daemon=True)
    thread.start()
    try:
        return await done
    except asyncio.CancelledError:
        rt.stop()
        ctx.cancelled.set()
        raise


def limits_from_config(config: RhaiConfig) -> Limits:
    """`Limits` from the config's ``[rhai]`` section (they are the same dataclass)."""
    return config
