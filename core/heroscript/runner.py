"""Run a playbook: actions in order, each result kept, stop at the first error."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from core.heroscript.actors.registry import ActorRegistry, BoundAction
from core.heroscript.child import run_in_child
from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionError, ActionFailed, NoRetry, RetryLater
from core.heroscript.model import Action, Playbook


@dataclass
class ActionResult:
    """What one action returned (JSON-serialisable) and how long it took."""

    id: int
    method: str
    line: int
    result: Any = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the result is a fresh JSON value: no copy is made)."""
        return {
            "id": self.id,
            "method": self.method,
            "line": self.line,
            "result": self.result,
            "seconds": self.seconds,
        }


@dataclass
class PlaybookResult:
    """Results of the actions that ran, and the error that stopped the run, if any.

    Attributes:
        results: one entry per action that succeeded, in order.
        error: the first error (names ``actor.action`` and the line), or None.
    """

    results: list[ActionResult] = field(default_factory=list)
    error: ActionError | None = None

    @property
    def ok(self) -> bool:
        """Whether every action ran without error."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict the job system can store."""
        error = None
        if self.error is not None:
            error = {
                "method": self.error.method,
                "line": self.error.line,
                "message": self.error.message,
                "text": str(self.error),
            }
        return {"ok": self.ok, "results": [r.to_dict() for r in self.results], "error": error}


def _json_ready(method: str, line: int, value: Any) -> Any:
    # Most actions return a plain scalar, which is its own JSON copy.
    if value is None or type(value) in _SCALARS:
        return value
    if type(value) is float and math.isfinite(value):
        return value
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        message = f"result is not JSON-serialisable ({type(value).__name__}: {exc})"
        raise ActionError(method, message, line) from None


_SCALARS = (str, int, bool)


async def call_action(
    bound: BoundAction, ctx: ActionContext, action: Action | None = None, line: int = 0
) -> Any:
    """Call a bound action (async or inline on the loop, sync in a thread); return its JSON.

    Raises:
        ActionError: the action failed or its result is not JSON.
        asyncio.CancelledError: the run was cancelled; ``ctx.cancelled`` is set.
    """
    info = bound.info
    kwargs = dict(bound.kwargs)
    args: tuple[Any, ...] = bound.args
    if info.signature.context_param:
        action_ctx = dataclasses.replace(ctx, action=action)
        if info.signature.takes_args:
            # `def f(self, ctx, *args)`: ctx must be passed by position before the args.
            args = (action_ctx, *args)
        else:
            kwargs[info.signature.context_param] = action_ctx
    try:
        budget = info.inline
        if info.in_child:
            value = await run_in_child(info.func, args, kwargs, ctx)
        elif info.is_async:
            value = await info.func(*args, **kwargs)
        elif budget is not None and (budget.allowed or ctx.inline_run):
            started = time.perf_counter()
            try:
                value = info.func(*args, **kwargs)
            finally:
                budget.spent(time.perf_counter() - started)
        else:
            value = await _in_thread(info.func, args, kwargs, ctx)
    except asyncio.CancelledError:
        ctx.cancelled.set()
        raise
    except ActionError:
        raise
    except ActionFailed as exc:
        error = ActionError(info.method, str(exc), line)
        # Kept so the watchdog can honour "retry later" and "don't retry".
        error.directive = exc if isinstance(exc, RetryLater | NoRetry) else None
        raise error from None
    except Exception as exc:
        raise ActionError(info.method, f"{type(exc).__name__}: {exc}", line) from exc
    return _json_ready(info.method, line, value)


async def _in_thread(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: ActionContext
) -> Any:
    """Run a plain ``def`` action in a thread of `ctx.executor`.

    A thread cannot be interrupted: on cancellation it is left to finish (``ctx.cancelled``
    tells it to stop) and its future goes to ``ctx.unfinished``, so the caller can keep
    the job's slot until the thread really ends.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    future = loop.run_in_executor(ctx.executor, call)
    try:
        # Shielded: cancelling the await must not hide when the thread ends.
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not future.done():
            ctx.unfinished.append(future)
        raise


async def run_action(action: Action, registry: ActorRegistry, ctx: ActionContext) -> Any:
    """Bind and run one action; return its JSON-ready result.

    Raises:
        ActionError: binding failed, the action failed, or its result is not JSON.
        asyncio.CancelledError: the run was cancelled; ``ctx.cancelled`` is set.
    """
    return await call_action(registry.bind(action), ctx, action, action.line)


async def run_playbook(
    playbook: Playbook,
    registry: ActorRegistry,
    ctx: ActionContext | None = None,
    result: PlaybookResult | None = None,
    check_first: bool = True,
) -> PlaybookResult:
    """Run the actions of ``playbook`` in order and stop at the first error.

    Args:
        playbook: the parsed script.
        registry: where the actors are.
        ctx: job id, log and cancellation for the actions.
        result: filled in place when given, so a caller that times the run out
            still has the results of the actions that finished.
        check_first: bind every action before running any, so a misspelt
            action or a bad parameter on a late line stops the run before the
            first side effect.

    Returns:
        The per-action results and the first error, if any.

    Raises:
        asyncio.CancelledError: the run was cancelled (e.g. by ``asyncio.timeout``);
            ``ctx.cancelled`` is set and ``result`` holds what finished.
    """
    ctx = ctx or ActionContext()
    result = result if result is not None else PlaybookResult()
    bound: dict[int, BoundAction] = {}
    if check_first:
        for n, action in enumerate(playbook):
            try:
                bound[n] = registry.bind(action)
            except ActionError as exc:
                ctx.log(f"error: {exc}")
                result.error = exc
                return result
    for n, action in enumerate(playbook):
        if ctx.cancelled.is_set():
            result.error = ActionError(action.method, "cancelled before it started", action.line)
            break
        ctx.log(f"line {action.line}: {action.method}")
        started = time.monotonic()
        try:
            ready = bound.get(n)
            if ready is None:
                value = await run_action(action, registry, ctx)
            else:
                value = await call_action(ready, ctx, action, action.line)
        except ActionError as exc:
            ctx.log(f"error: {exc}")
            result.error = exc
            break
        seconds = round(time.monotonic() - started, 6)
        result.results.append(ActionResult(action.id, action.method, action.line, value, seconds))
    return result
