"""Processors: run a job's params by type (HeroScript, OpenRPC, RhaiScript, AI) to an outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.heroscript import (
    ActionContext,
    ActionError,
    ActorRegistry,
    HeroScriptError,
    NoRetry,
    Playbook,
    RetryLater,
    check_size,
    parse,
    run_playbook,
)
from core.heroscript.openrpc import handle_jsonrpc
from core.jobs.model import Job, JobStatus, ParamsType, compact_json
from core.rhai import Limits

# Params up to this size are parsed on the loop (well under a millisecond).
INLINE_PARSE_CHARS = 4_096
# Parsed playbooks kept by their text, oldest out first. A queue's jobs mostly run the
# same few scripts, and parsing was a fifth of a no-op job's CPU in the worker.
PLANS_KEPT = 256


@dataclass(frozen=True)
class Outcome:
    """How a job ended."""

    status: JobStatus
    result: str = ""
    error: str = ""
    # Set when the action raised RetryLater (its delay) or NoRetry (final).
    retry_after: float | None = None
    no_retry: bool = False
    # The ErrorKind of an error outcome; empty reads as "failed".
    kind: str = ""


@dataclass(frozen=True)
class ProcessorSettings:
    """Where the external runners are (empty: not configured) and the Rhai sandbox limits.

    With ``rhai_command`` empty, RhaiScript runs in the embedded interpreter under
    ``rhai_limits`` (build them from the config with `core.rhai.host.limits_from_config`).
    """

    rhai_command: str = ""
    rhai_limits: Limits = field(default_factory=Limits)
    ai_base_url: str = ""
    ai_model: str = ""
    ai_api_key: str = ""


class Processors:
    """Runs one job's params according to its params type."""

    def __init__(self, registry: ActorRegistry, settings: ProcessorSettings) -> None:
        self.registry = registry
        self.settings = settings
        # Shared by every job of the same text: a run only reads its playbook (binding
        # converts the params into fresh arguments per call), so none sees another's.
        self._plans: dict[str, Playbook] = {}

    async def run(self, job: Job, ctx: ActionContext, playbook: Playbook | None = None) -> Outcome:
        """Run the job's params; exceptions other than cancellation become error outcomes.

        `playbook` is the job's HeroScript already parsed (by `plan`), if it was.
        """
        if playbook is not None:
            return await self.play(playbook, ctx)
        handler: Callable[[Job, ActionContext], Any] = {
            ParamsType.HEROSCRIPT: self._heroscript,
            ParamsType.OPENRPC: self._openrpc,
            ParamsType.RHAISCRIPT: self._rhaiscript,
            ParamsType.AI: self._ai,
        }[job.params_type]
        outcome: Outcome = await handler(job, ctx)
        return outcome

    def plan(self, job: Job) -> Playbook | None:
        """The job's playbook when it parses on the loop (small HeroScript), else None.

        None leaves everything, a parse error too, to `run`.
        """
        text = job.params
        if job.params_type is not ParamsType.HEROSCRIPT or len(text) > INLINE_PARSE_CHARS:
            return None
        playbook = self._plans.get(text)
        if playbook is not None:
            return playbook
        try:
            playbook = parse(text)
        except HeroScriptError:
            return None
        if len(self._plans) >= PLANS_KEPT:
            del self._plans[next(iter(self._plans))]
        self._plans[text] = playbook
        return playbook

    def all_inline(self, playbook: Playbook) -> bool:
        """Whether every action of the playbook is known and still runs on the loop.

        Such a playbook runs to its end without suspending, so `play` needs no task.
        """
        for action in playbook:
            try:
                budget = self.registry.lookup(action.actor, action.name).inline
            except ActionError:
                return False  # `run` reports it, as for any job
            if budget is None or not budget.allowed:
                return False
        return len(playbook) > 0

    async def _heroscript(self, job: Job, ctx: ActionContext) -> Outcome:
        try:
            # Checked again here: a job written into Redis by hand skipped the submit check.
            check_size(job.params)
            if len(job.params) > INLINE_PARSE_CHARS:
                playbook = await asyncio.to_thread(parse, job.params)
            else:
                playbook = parse(job.params)
        except HeroScriptError as exc:
            return Outcome(JobStatus.ERROR, error=str(exc))
        return await self.play(playbook, ctx)

    async def play(self, playbook: Playbook, ctx: ActionContext) -> Outcome:
        """Run a parsed HeroScript job to its outcome."""
        outcome = await run_playbook(playbook, self.registry, ctx)
        result = compact_json([r.to_dict() for r in outcome.results]).decode()
        if outcome.error is not None:
            directive = outcome.error.directive
            return Outcome(
                JobStatus.ERROR,
                result=result,
                error=str(outcome.error),
                retry_after=directive.delay if isinstance(directive, RetryLater) else None,
                no_retry=isinstance(directive, NoRetry),
            )
        return Outcome(JobStatus.DONE, result=result)

    async def _openrpc(self, job: Job, ctx: ActionContext) -> Outcome:
        response = await handle_jsonrpc(self.registry, job.params, ctx)
        result = compact_json(response).decode() if response is not None else ""
        if isinstance(response, dict) and "error" in response:
            return Outcome(JobStatus.ERROR, result=result, error=response["error"]["message"])
        return Outcome(JobStatus.DONE, result=result)

    async def _rhaiscript(self, job: Job, ctx: ActionContext) -> Outcome:
        command = self.settings.rhai_command
        if not command:
            return await self._rhai_embedded(job, ctx)
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(command),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own process group, so a timeout can kill everything the runner started.
            start_new_session=True,
        )
        try:
            out, err = await proc.communicate(job.params.encode())
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
            raise
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-5:]
            message = f"RhaiScript runner exited with code {proc.returncode}"
            return Outcome(JobStatus.ERROR, error=": ".join([message, *tail][:2]))
        return Outcome(JobStatus.DONE, result=out.decode(errors="replace"))

    async def _rhai_embedded(self, job: Job, ctx: ActionContext) -> Outcome:
        """Run the script in the embedded interpreter, in a thread, with the actors."""
        from core.rhai.host import run_script

        outcome = await run_script(job.params, self.registry, ctx, self.settings.rhai_limits)
        if outcome.error is not None:
            return Outcome(JobStatus.ERROR, error=f"{outcome.error.kind}: {outcome.error}")
        return Outcome(JobStatus.DONE, result=outcome.result)

    async def _ai(self, job: Job, ctx: ActionContext) -> Outcome:
        settings = self.settings
        if not settings.ai_base_url or not settings.ai_model:
            return Outcome(
                JobStatus.ERROR, error="no AI endpoint configured (ai.base_url and ai.model)"
            )
        import httpx

        headers = {"Authorization": f"Bearer {settings.ai_api_key}"} if settings.ai_api_key else {}
        body = {"model": settings.ai_model, "messages": _messages(job.params)}
        url = settings.ai_base_url.rstrip("/") + "/chat/completions"
        async with httpx.AsyncClient(timeout=job.timeout) as client:
            try:
                response = await client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                return Outcome(JobStatus.ERROR, error=f"AI endpoint {url}: {exc}")
        if response.status_code != 200:
            return Outcome(
                JobStatus.ERROR,
                error=f"AI endpoint {url} answered {response.status_code}: {response.text[:200]}",
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return Outcome(JobStatus.ERROR, error=f"AI endpoint {url} sent no chat completion")
        return Outcome(JobStatus.DONE, result=str(content))


def _messages(params: str) -> list[dict[str, str]]:
    """AI params are either a JSON list of chat messages or plain text for one user turn."""
    with contextlib.suppress(ValueError):
        data = json.loads(params)
        if isinstance(data, list) and all(isinstance(m, dict) for m in data):
            return [
                {"role": str(m.get("role", "user")), "content": str(m["content"])} for m in data
            ]
        if isinstance(data, dict) and "messages" in data:
            return _messages(json.dumps(data["messages"]))
    return [{"role": "user", "content": params}]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
