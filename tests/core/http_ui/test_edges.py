"""Edges of the HTTP UI: broken text, slow headers, too many event streams, slow RPC calls."""

from __future__ import annotations

import httpx


async def test_lone_surrogate_in_params_is_422(client: httpx.AsyncClient) -> None:
    body = b'{"params": "!!fake.return_success message:\\ud800\\n", "topic": "t"}'
    response = await client.post(
        "/api/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"]


async def test_lone_surrogate_in_validate_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/validate",
        content=b'{"text": "!!\\udfff"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "body.text: Value error, not valid Unicode: a lone surrogate U+DFFF at character 3"
    )


async def test_lone_surrogate_in_rpc_is_a_parse_error(client: httpx.AsyncClient) -> None:
    body = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "fake.return_success",'
        b' "params": {"message": "\\ud800"}}'
    )
    response = await client.post("/rpc", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32700
    assert "lone surrogate U+D800" in error["message"]
