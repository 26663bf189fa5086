"""Refusals: one error body for every route, the handlers that produce it, and its schema."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from core.api import EngineUnavailable, JobNotFound, JobRefused, Problem, ScheduleNotFound
from core.http_ui import models as m

T = TypeVar("T")
_WHERE = re.compile(r"line (\d+), col (\d+)")
_ERROR = {"model": m.Refusal}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "The body is not valid JSON"},
    401: {**_ERROR, "description": "A bearer token is required"},
    403: {**_ERROR, "description": "Cross-site request refused"},
    413: {**_ERROR, "description": "Request body too large"},
    421: {**_ERROR, "description": "Host header does not name this server"},
    422: {**_ERROR, "description": "Invalid request"},
    503: {**_ERROR, "description": "The jobs service is not running"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {**_ERROR, "description": "No such job"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {**_ERROR, "description": "Not possible now"}}


def refusal(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A JSON error response in the Refusal shape."""
    return JSONResponse(m.Refusal(detail=detail, **extra).model_dump(), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Give every refusal the one Refusal body shape."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return refusal(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        response = refusal(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the route it tried; a path here can have
            # several routes (GET and POST /api/jobs), and Allow must list them all.
            response.headers["Allow"] = ", ".join(_allowed(app, request))
        return response

    @app.exception_handler(JobNotFound)
    async def not_found(_: Request, exc: JobNotFound) -> JSONResponse:
        return refusal(404, str(exc))

    @app.exception_handler(ScheduleNotFound)
    async def no_schedule(_: Request, exc: ScheduleNotFound) -> JSONResponse:
        return refusal(404, str(exc))

    @app.exception_handler(EngineUnavailable)
    async def not_running(_: Request, exc: EngineUnavailable) -> JSONResponse:
        return refusal(503, str(exc))


def _allowed(app: FastAPI, request: Request) -> list[str]:
    methods: set[str] = set()
    for route in app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def problem(d: Problem) -> m.Problem:
    """The body of one HeroScript problem."""
    return m.Problem(line=d.line, col=d.col, message=d.message, severity=d.severity)


def refused_submission(exc: JobRefused) -> m.Refusal:
    """The 422 body: the engine's message, and where in the params when it says so.

    The position comes with the refusal: the params are never parsed a second time here
    (a text refused for its size must not reach the parser at all).
    """
    index = exc.index
    if exc.problems:
        problems = [problem(d) for d in exc.problems]
        return m.Refusal(
            detail=str(exc), line=exc.line, col=exc.col, problems=problems, index=index
        )
    if exc.line:
        return m.Refusal(detail=str(exc), line=exc.line, col=exc.col, index=index)
    where = _WHERE.search(str(exc))
    if where:
        return m.Refusal(detail=str(exc), line=int(where[1]), col=int(where[2]), index=index)
    return m.Refusal(detail=str(exc), index=index)


async def changing(call: Awaitable[T]) -> T:
    """Await an engine change; a refusal that is not "not found" is a conflict (409)."""
    try:
        return await call
    except JobNotFound:
        raise
    except JobRefused as exc:
        raise HTTPException(409, str(exc)) from None
