"""Checks a job's params before it is stored, so a bad submission gets no id."""

from __future__ import annotations

import functools
import json

from core.heroscript import ActorRegistry, validate
from core.heroscript.errors import caret_view, shorten
from core.jobs.manager import JobError, Validator
from core.jobs.model import ParamsType

# Verdicts kept, and the longest params kept (the cache holds at most ~4 MiB of text).
CACHE_SIZE = 1_024
CACHED_PARAMS_CHARS = 4_096


class InvalidParamsError(JobError):
    """Params that cannot run; the message names the line and column where it can."""


def make_validator(registry: ActorRegistry | None) -> Validator:
    """A validator that knows the engine's actors (None checks syntax only).

    Params found fine are remembered by (type, text, the registry's version): a batch of
    one script, or a client repeating a few, is parsed once. The verdict is a function
    of exactly those (the parse and the binding read nothing else), and a refusal is
    never kept, so it is found again, with its place, each time.
    """

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def passes(kind: ParamsType, params: str, version: int) -> None:
        check_params(kind, params, registry)

    def check(kind: ParamsType, params: str) -> None:
        if len(params) > CACHED_PARAMS_CHARS:
            check_params(kind, params, registry)
        else:
            passes(kind, params, registry.version if registry is not None else 0)

    return check


def check_params(kind: ParamsType, params: str, registry: ActorRegistry | None) -> None:
    """Raise InvalidParamsError when these params cannot run with these actors."""
    if not params.strip():
        raise InvalidParamsError(f"{kind} params are empty")
    if kind is ParamsType.HEROSCRIPT:
        problems = validate(params, registry)
        if problems:
            # Lines as the parser counts them (splitlines also splits on \v, \f, …).
            lines = params.split("\n")
            first = problems[0]
            source = lines[first.line - 1] if 0 < first.line <= len(lines) else ""
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            view = caret_view(source, first.col).replace("\n", "\n  ")
            raise InvalidParamsError(
                f"{shorten(str(first))}{more}\n  {view}",
                line=first.line,
                col=first.col,
                problems=problems,
            )
    elif kind is ParamsType.OPENRPC:
        try:
            request = json.loads(params)
        except ValueError as exc:
            raise InvalidParamsError(f"openrpc params are not JSON: {exc}") from None
        if not isinstance(request, dict | list):
            raise InvalidParamsError("openrpc params must be a JSON-RPC request object")
