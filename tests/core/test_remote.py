"""The request channel: every request with a reply token is answered, none stops the server."""

from __future__ import annotations

import json

import pytest

from core import channel
from core.engine import Engine
from core.jobs import keys
from core.remote import RequestError, call


@pytest.mark.parametrize(
    ("request_", "kind", "words"),
    [
        ({"op": "job", "args": {"id": 1e999}}, "refused", "id must be a positive integer"),
        ({"op": "job", "args": {"id": "7"}}, "refused", "id must be a positive integer"),
        ({"op": "job", "args": {"id": 424242}}, "not_found", "no job with id 424242"),
        ({"op": "jobs", "args": {"status": "nope"}}, "refused", "status 'nope' is unknown"),
        ({"op": "jobs", "args": {"limit": 10**9}}, "refused", "limit must be"),
        ({"op": "submit", "args": {"params": 5}}, "refused", "params must be a string"),
        ({"op": "submit", "args": {"params": "\ud800", "topic": "t"}}, "refused", "not valid"),
        ({"op": "launch", "args": {}}, "refused", "unknown request 'launch'"),
        ({"op": "job", "args": []}, "refused", "args must be an object"),
    ],
)
async def test_a_malformed_request_gets_an_error_reply_and_the_server_goes_on(
    engine: Engine, request_: dict[str, object], kind: str, words: str
) -> None:
    redis = engine.redis.client()
    try:
        token = "t0ken"
        await redis.rpush(keys.REQUESTS, json.dumps({"token": token, **request_}))
        answered = await redis.blpop([keys.reply_key(token)], timeout=10)
        assert answered is not None, "no reply"
        reply = json.loads(answered[1])
        assert reply["kind"] == kind
        assert words in reply["error"]
        # Requests without a place to reply to are dropped, not fatal either.
        for junk in (b"{", b"[]", b'{"token": 5}', b"\xff\xfe", b"x" * 2_000_000):
            await redis.rpush(keys.REQUESTS, junk)
        assert await call(redis, "jobs", {"limit": 1}) == []
    finally:
        await redis.aclose()


async def test_cancel_requeue_pause_and_resume_over_the_channel(engine: Engine) -> None:
    redis = engine.redis.client()
    try:
        await call(redis, "pause", {"circle": "default", "topic": "held"})
        job = await call(redis, "submit", {"topic": "held", "params": "!!core.echo\n"})
        assert "session_key" not in job
        with pytest.raises(RequestError, match="not ended") as refused:
            await call(redis, "requeue", {"id": job["job_id"]})
        assert refused.value.kind == "not_ended"
        cancelled = await call(redis, "cancel", {"id": job["job_id"]})
        assert (cancelled["status"], cancelled["error"]) == ("error", "cancelled")
        with pytest.raises(RequestError) as again:
            await call(redis, "cancel", {"id": job["job_id"]})
        assert again.value.kind == "ended"
        await call(redis, "resume", {"circle": "default", "topic": "held"})
        requeued = await call(redis, "requeue", {"id": job["job_id"]})
        assert requeued["status"] == "new"
    finally:
        await redis.aclose()


def test_the_channel_names_are_the_job_systems() -> None:
    # core.channel repeats them so that the client library need not load core.jobs.
    assert channel.REQUESTS == keys.REQUESTS
    assert channel.EVENTS_CHANNEL == keys.EVENTS_CHANNEL
    assert channel.reply_key("abc") == keys.reply_key("abc")


async def test_submit_many_and_get_many_over_the_channel(engine: Engine) -> None:
    redis = engine.redis.client()
    try:
        jobs = [{"params": f"!!core.echo message:{i}\n", "topic": "chan"} for i in range(3)]
        made = await call(redis, "submit_many", {"jobs": jobs})
        assert [j["params"] for j in made] == [j["params"] for j in jobs]
        ids = [j["job_id"] for j in made]
        assert [j["job_id"] for j in await call(redis, "get_many", {"ids": ids[::-1]})] == ids[::-1]
        for bad, words in [
            ({"params": "!!core.echo\n", "colour": "red"}, "item 1: unknown field 'colour'"),
            ({"params": "!!a.b.c x:1\n"}, "item 1: line 1, col 3:"),
            ("!!core.echo\n", "item 1: a job must be an object"),
            ({"params": "x", "timeout": "soon"}, "item 1: timeout must be a number"),
        ]:
            with pytest.raises(RequestError) as refused:
                await call(redis, "submit_many", {"jobs": [jobs[0], bad]})
            assert refused.value.kind == "refused"
            assert str(refused.value).startswith(words)
            assert refused.value.reply["index"] == 1
        assert len(await call(redis, "jobs", {"topic": "chan"})) == 3
        with pytest.raises(RequestError, match="jobs must be a list"):
            await call(redis, "submit_many", {"jobs": {}})
        with pytest.raises(RequestError) as missing:
            await call(redis, "get_many", {"ids": [*ids, 424242]})
        assert missing.value.kind == "not_found"
    finally:
        await redis.aclose()
