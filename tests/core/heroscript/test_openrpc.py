"""JSON-RPC 2.0 over the registry, and the OpenRPC document from rpc.discover."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.heroscript.actors.registry import ActorRegistry
from core.heroscript.errors import ActionFailed
from core.heroscript.openrpc import discover, handle_jsonrpc


class Calc:
    """Arithmetic."""

    def add(self, a: int, b: int = 1) -> int:
        """Add two numbers.

        Args:
            a: the first number.
            b: the second number.
        """
        return a + b

    def tags(self, items: list[str], note: str | None = None) -> list[str]:
        """Echo tags."""
        return items

    def boom(self) -> None:
        """Crash."""
        raise RuntimeError("kaput")

    def refuse(self) -> None:
        """Fail on purpose."""
        raise ActionFailed("no thanks")


@pytest.fixture
def registry() -> ActorRegistry:
    reg = ActorRegistry()
    reg.load_builtins()
    reg.register("calc", Calc)
    return reg


async def _call(registry: ActorRegistry, body: Any) -> Any:
    return await handle_jsonrpc(registry, body)


def _req(method: str, params: Any = None, ident: Any = 1) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": ident}
    if params is not None:
        request["params"] = params
    return request


async def test_call_with_named_params(registry: ActorRegistry) -> None:
    answer = await _call(registry, json.dumps(_req("calc.add", {"a": 2, "b": 3})))
    assert answer == {"jsonrpc": "2.0", "result": 5, "id": 1}
    answer = await _call(registry, _req("calc.add", {"a": "40", "b": "2"}).copy())
    assert answer["result"] == 42
    answer = await _call(registry, _req("fake.return_success", {"message": "hi"}, "x"))
    assert answer == {"jsonrpc": "2.0", "result": "hi", "id": "x"}


async def test_async_action(registry: ActorRegistry) -> None:
    answer = await _call(registry, _req("fake.sleep", {"seconds": 0}))
    assert answer["result"] == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        ('{"jsonrpc": "2.0", "method": 5, "id": 1}', -32600),
        ('{"method": "calc.add", "id": 1}', -32600),
        ("[]", -32600),
        ('"just a string"', -32600),
        (json.dumps(_req("calc.nope", {})), -32601),
        (json.dumps(_req("nope.add", {})), -32601),
        (json.dumps(_req("calc.add", {"a": "x"})), -32602),
        (json.dumps(_req("calc.add", {})), -32602),
        (json.dumps(_req("calc.add", {"a": 1, "c": 2})), -32602),
        (json.dumps(_req("calc.add", [1, 2])), -32602),
        (json.dumps(_req("calc.add", {"a": True})), -32602),
        (json.dumps(_req("calc.boom")), -32603),
        (json.dumps(_req("calc.refuse")), -32000),
    ],
)
async def test_error_codes(registry: ActorRegistry, body: Any, code: int) -> None:
    answer = await _call(registry, body)
    assert answer["error"]["code"] == code, answer
    assert answer["jsonrpc"] == "2.0"


async def test_unknown_method_suggests(registry: ActorRegistry) -> None:
    answer = await _call(registry, _req("fake.retrun_success", {}))
    assert answer["error"]["data"] == {"suggestion": "fake.return_success"}


async def test_batch_and_notifications(registry: ActorRegistry) -> None:
    batch = [
        _req("calc.add", {"a": 1}, 1),
        {"jsonrpc": "2.0", "method": "calc.add", "params": {"a": 1}},
        _req("calc.nope", {}, 2),
        5,
    ]
    answer = await _call(registry, json.dumps(batch))
    assert [a.get("id") for a in answer] == [1, 2, None]
    assert answer[0]["result"] == 2
    assert answer[1]["error"]["code"] == -32601
    assert answer[2]["error"]["code"] == -32600
    notification = {"jsonrpc": "2.0", "method": "calc.add", "params": {"a": 1}}
    assert await _call(registry, notification) is None
    assert await _call(registry, [notification]) is None


async def test_discover(registry: ActorRegistry) -> None:
    answer = await _call(registry, _req("rpc.discover"))
    doc = answer["result"]
    assert doc == discover(registry)
    assert doc["openrpc"].startswith("1.")
    methods = {m["name"]: m for m in doc["methods"]}
    assert {"calc.add", "fake.sleep", "file.write", "core.echo"} <= set(methods)
    add = methods["calc.add"]
    assert add["summary"] == "Add two numbers."
    assert add["params"] == [
        {
            "name": "a",
            "required": True,
            "schema": {"type": "integer"},
            "description": "the first number.",
        },
        {
            "name": "b",
            "required": False,
            "schema": {"type": "integer", "default": 1},
            "description": "the second number.",
        },
    ]
    assert add["result"]["schema"] == {"type": "integer"}
    tags = methods["calc.tags"]["params"]
    assert tags[0]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert tags[1]["schema"] == {"oneOf": [{"type": "string"}, {"type": "null"}]}
    assert json.loads(json.dumps(doc)) == doc
