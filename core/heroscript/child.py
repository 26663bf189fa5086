"""Actions that run in a child process, so a timeout or a cancel can kill them for real.

A thread cannot be stopped; a process can. An action opts in with `in_process`; the
runner then starts a fresh interpreter in its own process group, hands it the bound
method and its arguments (pickled: the actor instance must pickle), and reads back log
lines, progress and the result. Cancelling the run kills the whole group with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionFailed, NoRetry, RetryLater

RUN_IN_CHILD = "run_in_child"
_FRAME = struct.Struct(">I")
# The child first sets sys.path to the parent's, so it imports what the parent imports.
_BOOT = (
    "import pickle, sys\n"
    "sys.path[:] = pickle.load(sys.stdin.buffer)\n"
    "from core.heroscript.child import child_main\n"
    "child_main()\n"
)

F = TypeVar("F", bound=Callable[..., Any])


def in_process(func: F) -> F:
    """Mark an actor method to run in a child process that is killed at timeout or cancel.

    Use it for work that neither awaits nor checks ``ctx.cancelled`` (a blocking library
    call, a CPU-bound loop). Each call starts an interpreter (tens of milliseconds), and
    the actor instance, arguments and result must pickle. ``ctx.log`` and
    ``ctx.progress`` work; other context fields are not shared with the child.
    """
    setattr(func, RUN_IN_CHILD, True)
    return func


class _ContextSlot:
    """Stands in for the ActionContext in the pickled call; the child puts its own there."""


async def run_in_child(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], ctx: ActionContext
) -> Any:
    """Run ``func(*args, **kwargs)`` in a child process and return its result.

    Raises:
        ActionFailed: the action failed, its call does not pickle, or the child died.
        asyncio.CancelledError: the run was cancelled; the child's group is killed first.
    """
    slot = _ContextSlot()
    call = (
        func,
        tuple(slot if isinstance(a, ActionContext) else a for a in args),
        {k: slot if isinstance(v, ActionContext) else v for k, v in kwargs.items()},
        ctx.job_id,
    )
    try:
        payload = pickle.dumps(sys.path) + pickle.dumps(call)
    except Exception as exc:
        raise ActionFailed(f"cannot run in a child process: {type(exc).__name__}: {exc}") from None
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BOOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        # Its own group, so whatever the action starts dies with it.
        start_new_session=True,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(payload)
        await proc.stdin.drain()
        proc.stdin.close()
        while True:
            try:
                size = _FRAME.unpack(await proc.stdout.readexactly(_FRAME.size))[0]
                kind, value = pickle.loads(await proc.stdout.readexactly(size))
            except asyncio.IncompleteReadError:
                code = await proc.wait()
                message = f"child process exited with code {code} before it answered"
                raise ActionFailed(message) from None
            if kind == "log":
                ctx.log(str(value))
            elif kind == "progress":
                # Checked again: the child runs the action's code, its frames are not trusted.
                try:
                    ctx.progress(*value)
                except (TypeError, ValueError) as exc:
                    raise ActionFailed(f"child process sent a bad progress report: {exc}") from None
            elif kind == "ok":
                return value
            elif kind == "retry_later":
                delay, message = value
                raise RetryLater(float(delay), str(message))
            elif kind == "no_retry":
                raise NoRetry(str(value))
            else:
                raise ActionFailed(str(value))
    except BaseException:
        await asyncio.shield(_kill(proc))
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


def child_main() -> None:
    """The child's side: read the call, run it, send log lines and the outcome back."""
    call = pickle.load(sys.stdin.buffer)
    out = os.fdopen(os.dup(1), "wb")
    # What the action prints goes to stderr: stdout carries the frames.
    os.dup2(2, 1)

    def send(kind: str, value: Any) -> None:
        data = pickle.dumps((kind, value))
        out.write(_FRAME.pack(len(data)) + data)
        out.flush()

    _run_call(call, send, out)


def _run_call(call: Any, send: Callable[[str, Any], None], out: IO[bytes]) -> None:
    func, args, kwargs, job_id = call
    ctx = ActionContext(
        job_id=job_id,
        log=lambda line: send("log", line),
        report=lambda fraction, message: send("progress", (fraction, message)),
    )
    args = tuple(ctx if isinstance(a, _ContextSlot) else a for a in args)
    kwargs = {k: ctx if isinstance(v, _ContextSlot) else v for k, v in kwargs.items()}
    try:
        value = func(*args, **kwargs)
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
        send("ok", value)
    except RetryLater as exc:
        # Sent as its own kind so the job's retry sees the action's wish, not a failure.
        send("retry_later", (exc.delay, str(exc)))
    except NoRetry as exc:
        send("no_retry", str(exc))
    except ActionFailed as exc:
        send("failed", str(exc))
    except BaseException as exc:
        send("error", f"{type(exc).__name__}: {exc}")
    out.close()
