"""OpenRPC over the actor registry: JSON-RPC 2.0 calls of ``actor.action`` and ``rpc.discover``.

Errors use the standard codes: -32700 parse error, -32600 invalid request,
-32601 unknown method (with the closest name in ``data``), -32602 invalid
params, -32603 internal error (an action crashed or returned non-JSON). An
action that fails on purpose (`ActionFailed`) answers -32000, the first code
JSON-RPC leaves to servers.
"""

from __future__ import annotations

import contextlib
import json
import re
import typing
from datetime import timedelta
from typing import Any

from core import __version__
from core.heroscript.actors.binding import MISSING, optional_inner
from core.heroscript.actors.registry import ActionInfo, ActorRegistry, BoundAction
from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionError
from core.heroscript.params import Percent
from core.heroscript.runner import call_action

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
ACTION_FAILED = -32000
OPENRPC_VERSION = "1.3.2"
_ARG_LINE_RE = re.compile(r"^\s{2,}\*{0,2}(\w+)(?: \([^)]*\))?:\s*(.+)$")


def _error(ident: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": ident}


def schema_for(hint: Any) -> dict[str, Any]:
    """Return the JSON Schema of a supported parameter type."""
    inner = optional_inner(hint)
    if inner is not None:
        return {"oneOf": [schema_for(inner), {"type": "null"}]}
    if hint is list or typing.get_origin(hint) is list:
        args = typing.get_args(hint)
        return {"type": "array", "items": schema_for(args[0] if args else str)}
    if hint is timedelta:
        return {"type": ["number", "string"], "description": "seconds, or 10s, 5m, 1h30m"}
    if hint is Percent:
        return {"type": ["number", "string"], "description": "0 to 100, % optional"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is type(None) or hint is None:
        return {"type": "null"}
    return {}


def _arg_docs(doc: str) -> dict[str, str]:
    """Read ``name: text`` lines of a Google-style ``Args:`` section."""
    found: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE_RE.match(line)
            if match:
                found[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith(" "):
                in_args = False
    return found


def _method(info: ActionInfo) -> dict[str, Any]:
    docs = _arg_docs(info.doc)
    params = []
    for param in info.params:
        schema = schema_for(param.hint)
        if param.default is not MISSING and param.default is not None:
            with contextlib.suppress(TypeError, ValueError):
                schema["default"] = json.loads(json.dumps(param.default))
        entry: dict[str, Any] = {"name": param.name, "required": param.required, "schema": schema}
        if param.name in docs:
            entry["description"] = docs[param.name]
        params.append(entry)
    method: dict[str, Any] = {
        "name": info.method,
        "params": params,
        "result": {"name": "result", "schema": schema_for(info.signature.returns)},
        "paramStructure": "by-name",
    }
    if info.summary:
        method["summary"] = info.summary
    if info.doc:
        method["description"] = info.doc
    return method


def discover(registry: ActorRegistry) -> dict[str, Any]:
    """Return the OpenRPC document of every action in ``registry``."""
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "HeroAgent actors", "version": __version__},
        "methods": [_method(info) for info in registry.actions()],
    }


async def _one(registry: ActorRegistry, request: Any, ctx: ActionContext) -> dict[str, Any] | None:
    if not isinstance(request, dict):
        return _error(None, INVALID_REQUEST, "Invalid Request: not an object")
    ident = request.get("id")
    if "id" in request and not isinstance(ident, str | int | float | type(None)):
        return _error(None, INVALID_REQUEST, "Invalid Request: bad id")
    method = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
        return _error(ident, INVALID_REQUEST, "Invalid Request: needs jsonrpc 2.0 and a method")
    params = request.get("params", {})
    notification = "id" not in request
    response = await _call(registry, method, params, ident, ctx)
    return None if notification else response


async def _call(
    registry: ActorRegistry, method: str, params: Any, ident: Any, ctx: ActionContext
) -> dict[str, Any]:
    if method == "rpc.discover":
        return {"jsonrpc": "2.0", "result": discover(registry), "id": ident}
    actor, _, name = method.rpartition(".")
    try:
        info = registry.lookup(actor or "core", name)
    except ActionError as exc:
        data = {"suggestion": exc.suggestion} if exc.suggestion else None
        return _error(ident, METHOD_NOT_FOUND, f"Method not found: {exc.message}", data)
    if isinstance(params, list) and not params:
        params = {}
    if not isinstance(params, dict):
        return _error(ident, INVALID_PARAMS, "Invalid params: give params by name (an object)")
    try:
        kwargs = registry.bind_values(info, params)
    except ActionError as exc:
        return _error(ident, INVALID_PARAMS, f"Invalid params: {exc.message}", {"param": exc.param})
    try:
        result = await call_action(BoundAction(info, kwargs, ()), ctx)
    except ActionError as exc:
        crashed = exc.__cause__ is not None or "JSON" in exc.message
        code = INTERNAL_ERROR if crashed else ACTION_FAILED
        return _error(ident, code, exc.message)
    return {"jsonrpc": "2.0", "result": result, "id": ident}


async def handle_jsonrpc(
    registry: ActorRegistry,
    request_body: bytes | str | dict[str, Any] | list[Any],
    ctx: ActionContext | None = None,
) -> dict[str, Any] | list[dict[str, Any]] | None:
    """Answer one JSON-RPC 2.0 request or batch.

    Args:
        registry: the actors to call.
        request_body: the raw body, or JSON already decoded.
        ctx: passed to actions that ask for an `ActionContext`.

    Returns:
        The response, a list for a batch, or None when only notifications came.
    """
    ctx = ctx or ActionContext()
    request: Any = request_body
    if isinstance(request_body, bytes | str):
        try:
            request = json.loads(request_body)
        except (ValueError, UnicodeDecodeError):
            return _error(None, PARSE_ERROR, "Parse error")
    if isinstance(request, list):
        if not request:
            return _error(None, INVALID_REQUEST, "Invalid Request: empty batch")
        answers = [await _one(registry, item, ctx) for item in request]
        found = [a for a in answers if a is not None]
        return found or None
    return await _one(registry, request, ctx)
