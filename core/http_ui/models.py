"""Request and response bodies of the JSON API; they are what /openapi.json describes."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from core.api import JobSpec, JobView, QueueView, ServiceStatus
from core.events.shapes import MAX_BATCH
from core.http_ui.sse import EVENT_TYPES

# The engine's own rules, repeated in the schema so clients (and schemathesis) know them.
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_JOB_ID = 2**48 - 1
ParamsTypeName = Literal["heroscript", "rhaiscript", "openrpc", "ai"]
StatusName = Literal["new", "scheduled", "active", "done", "error"]
BackoffName = Literal["fixed", "exponential"]
RetryKind = Literal["failed", "timeout", "worker_lost", "dependency_failed"]
# Far enough for any real schedule, near enough that a typo (ms for s) is refused.
MAX_DELAY = 366 * 24 * 3600.0
MAX_RUN_AT = 32_503_680_000.0  # the year 3000
UNIQUE_KEY_PATTERN = r"^([A-Za-z0-9_.:/@=+-]{1,200})?$"
MAX_PARENTS = 100
# The engine measures a graph in UTF-8 bytes (1 MiB); characters are at most that.
MAX_GRAPH_CHARS = 1024 * 1024


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in `text` (UTF-8 cannot carry one), else None.

    JSON lets a client escape half a surrogate pair; Python decodes it to a string that fails only
    later, when something encodes it, as a 500. Refusing it at the door says why.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def _valid_unicode(text: str) -> str:
    at = lone_surrogate(text)
    if at is not None:
        raise ValueError(
            f"not valid Unicode: a lone surrogate U+{ord(text[at]):04X} at character {at + 1}"
        )
    return text


# A string that can be stored and sent back: no lone surrogates.
UnicodeText = Annotated[str, AfterValidator(_valid_unicode)]


class JobPage(BaseModel):
    """A page of jobs, newest first; pass `next_before_id` as `before_id` for the next page."""

    jobs: list[JobView]
    next_before_id: int | None


class JobDetail(BaseModel):
    """A job's current state and every stored version, oldest first."""

    job: JobView
    history: list[JobView]


def _no_bool(value: object) -> object:
    # JSON's true is not the number 1: pydantic would take it as one.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# A number as JSON Schema reads one (1009.0 is a whole one), never a boolean.
Count = Annotated[int, BeforeValidator(_no_bool)]
Seconds = Annotated[float, BeforeValidator(_no_bool)]


class SubmitRequest(BaseModel):
    """A new job."""

    model_config = ConfigDict(extra="forbid")

    params: str = Field(description="HeroScript text, or a JSON-RPC request for openrpc")
    topic: str = Field("default", pattern=NAME_PATTERN)
    circle: str = Field("default", pattern=NAME_PATTERN)
    params_type: ParamsTypeName = "heroscript"
    timeout: Seconds = Field(60.0, gt=0, le=7 * 24 * 3600, description="seconds")
    log: bool = False
    delay: Seconds = Field(0.0, ge=0, le=MAX_DELAY, description="seconds to wait before queueing")
    run_at: Seconds = Field(0.0, ge=0, le=MAX_RUN_AT, description="epoch seconds to queue at")
    retries: Count | None = Field(None, ge=0, le=1000, description="None: the queue's default")
    backoff: BackoffName | None = None
    backoff_base: Seconds | None = Field(None, ge=0, le=MAX_DELAY, description="seconds")
    backoff_max: Seconds | None = Field(None, ge=0, le=MAX_DELAY, description="seconds")
    retry_on: list[RetryKind] | None = Field(None, max_length=4)
    priority: Count | None = Field(None, ge=0, le=9, description="higher runs first; None: 0")
    unique_key: str = Field(
        "",
        pattern=UNIQUE_KEY_PATTERN,
        description="While a job with this key has not ended, answer with it (duplicate)",
    )
    unique_for: Seconds = Field(
        0.0, ge=0, le=MAX_DELAY, description="seconds the key is kept after the job ends"
    )
    depends_on: list[Annotated[int, Field(ge=1, le=MAX_JOB_ID)]] = Field(
        [], max_length=MAX_PARENTS, description="Job ids that must be done first"
    )
    on_parent_error: Literal["fail", "run"] = "fail"

    def spec(self) -> JobSpec:
        """The engine's form of this submission (the fields are JobSpec's, by name)."""
        return JobSpec(**self.model_dump())


# The engine's rate syntax without the spaces it tolerates in the config: the schema
# and the check agree on every text, and the refusal says what form a rate takes.
RATE_PATTERN = r"^([1-9][0-9]{0,8}/([1-9][0-9]{0,8})?(ms|s|m|h))?$"
MAX_RATE_TEXT = 64


def _rate_text(text: str) -> str:
    if len(text) > MAX_RATE_TEXT or not re.fullmatch(RATE_PATTERN, text):
        raise ValueError(
            f"rate {text[:MAX_RATE_TEXT]!r} is not of the form N/s, N/m, N/h, N/ms or N/10s"
        )
    return text


RateText = Annotated[str, AfterValidator(_rate_text)]


class LimitsRequest(BaseModel):
    """A queue's limits over every worker; each replaces what was set before."""

    model_config = ConfigDict(extra="forbid")

    max_active: Count = Field(0, ge=0, le=1_000_000, description="0: no limit")
    rate: RateText = Field(
        "",
        json_schema_extra={"pattern": RATE_PATTERN},
        description='"20/s", "100/m", "5/10s"; "": no limit',
    )


class GraphRequest(BaseModel):
    """A HeroScript job graph: `!!job.define name:… after:…` actions (docs/heroscript.md)."""

    model_config = ConfigDict(extra="forbid")

    text: UnicodeText = Field(max_length=MAX_GRAPH_CHARS)


class DeadRequeueRequest(BaseModel):
    """Which dead letters to run again: these ids, or with `all` every one (narrowed)."""

    # Strict: `"all": 0` is a mistake to refuse, not a false to guess.
    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[Annotated[int, Field(ge=1, le=MAX_JOB_ID)]] = Field([], max_length=1000)
    all: bool = False
    circle: str | None = Field(None, pattern=NAME_PATTERN)
    topic: str | None = Field(None, pattern=NAME_PATTERN)


class PurgeRequest(BaseModel):
    """Which ended jobs to delete from the history for good; `confirm` must be true."""

    model_config = ConfigDict(extra="forbid", strict=True)

    confirm: Literal[True] = Field(description="true: a purge cannot be undone")
    status: Literal["done", "error"] | None = Field(None, description="None: both")
    circle: str | None = Field(None, pattern=NAME_PATTERN)
    topic: str | None = Field(None, pattern=NAME_PATTERN)
    dead: bool | None = Field(None, description="true: only dead letters")
    before: float | None = Field(
        None, ge=0, le=MAX_RUN_AT, description="epoch seconds: only jobs that ended before"
    )
    keep: int = Field(0, ge=0, le=MAX_JOB_ID, description="spare the newest this many")
    limit: int | None = Field(None, ge=1, le=MAX_JOB_ID, description="purge at most this many")


class PurgeResult(BaseModel):
    """How many jobs a purge deleted."""

    purged: int


class ScheduleRequest(BaseModel):
    """A new periodic job: exactly one of `cron` or `every`, and the job each fire makes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    params: str = Field(description="The params of each job the schedule makes")
    topic: str = Field(pattern=NAME_PATTERN)
    circle: str = Field("default", pattern=NAME_PATTERN)
    cron: str = Field(
        "", max_length=200, description='"m h dom mon dow", or with a sixth field for seconds'
    )
    every: str = Field("", max_length=40, description="A fixed interval: 10s, 5m, 1h, 1d")
    tz: str = Field("UTC", max_length=64, description="The time zone the cron fields are read in")
    missed: Literal["latest", "all", "skip"] = "latest"
    params_type: ParamsTypeName = "heroscript"
    timeout: float = Field(60.0, gt=0, le=7 * 24 * 3600, description="seconds")


class Problem(BaseModel):
    """One problem of a HeroScript text, 1-based line and column."""

    line: int
    col: int
    message: str
    severity: str = "error"


class Refusal(BaseModel):
    """Why the engine refused a request; line and column when the params say where."""

    detail: str
    line: int | None = None
    col: int | None = None
    problems: list[Problem] = []
    index: int | None = Field(None, description="The refused item of a batch, from 0")


class ValidateRequest(BaseModel):
    """A HeroScript text to check."""

    text: UnicodeText


class Validation(BaseModel):
    """The problems of a HeroScript text; empty when it can run."""

    problems: list[Problem]


@dataclass(frozen=True)
class Queue(QueueView):
    """One circle/topic queue with its counts and the rate of jobs ending."""

    rate_per_second: float = 0.0

    @classmethod
    def of(cls, view: QueueView, rate: float) -> Queue:
        """The body of a queue view."""
        return cls(**dataclasses.asdict(view), rate_per_second=rate)


class Service(BaseModel):
    """One engine service and its state."""

    name: str
    state: str
    address: str
    pid: int | None
    uptime: float | None
    last_error: str
    detail: str

    @classmethod
    def of(cls, status: ServiceStatus) -> Service:
        """The body of a service status."""
        return cls(
            name=status.name,
            state=status.state.value,
            address=status.address,
            pid=status.pid,
            uptime=status.uptime,
            last_error=status.last_error,
            detail=status.detail,
        )


class Action(BaseModel):
    """An action the engine can run, with a HeroScript template."""

    method: str
    doc: str
    params: list[list[str]]
    template: str


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


# JSON-RPC bodies are described by hand: the endpoint reads the raw body, so that a parse
# error is a JSON-RPC error (-32700), as the protocol says, not an HTTP 422.
_RPC_CALL = {
    "type": "object",
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "method": {"type": "string"},
        "params": {"oneOf": [{"type": "object"}, {"type": "array"}]},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
    },
    "required": ["jsonrpc", "method"],
}
RPC_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [_RPC_CALL, {"type": "array", "items": _RPC_CALL, "minItems": 1}]}
        }
    },
}
RPC_RESPONSE: dict[str, Any] = {
    "description": "A JSON-RPC response, or a list of them for a batch",
    "content": {"application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}}},
}


def rpc_envelope_error(body: bytes) -> dict[str, Any] | None:
    """The JSON-RPC error for a body that is not a request (or batch) at all, else None."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _rpc_error(-32700, "Parse error")
    text = json.dumps(request, ensure_ascii=False)
    at = lone_surrogate(text)
    if at is not None:
        message = f"Parse error: a string holds a lone surrogate U+{ord(text[at]):04X}"
        return _rpc_error(-32700, message + ", which is not valid Unicode")
    calls = request if isinstance(request, list) else [request]
    if not calls or not all(_is_call(c) for c in calls):
        return _rpc_error(-32600, "Invalid Request")
    return None


def _calls(body: bytes) -> list[Any]:
    """The calls of a body that passed `rpc_envelope_error`."""
    request = json.loads(body)
    return request if isinstance(request, list) else [request]


def rpc_methods(body: bytes) -> str:
    """The methods a request calls, for a log line: `a.b`, or `[a.b, c.d]` for a batch."""
    request = json.loads(body)
    if isinstance(request, list):
        return "[" + ", ".join(str(call.get("method")) for call in request) + "]"
    return str(request.get("method"))


def rpc_outcome(answer: Any) -> str:
    """How an answered request ended, in a word or two: ok, error -32601, notification."""
    if answer is None:
        return "ok (notification)"
    answers = answer if isinstance(answer, list) else [answer]
    codes = [str(a["error"].get("code")) for a in answers if isinstance(a.get("error"), dict)]
    return f"error {', '.join(codes)}" if codes else "ok"


def rpc_timeout_answer(body: bytes, seconds: float) -> Any:
    """The answer to a request whose calls did not end in time: an error for each call.

    Notifications get no answer, as ever; when all calls were notifications, None.
    """
    error = {"code": -32000, "message": f"Server error: the call did not end within {seconds:g} s"}
    calls = _calls(body)
    answers = [{"jsonrpc": "2.0", "error": error, "id": c["id"]} for c in calls if "id" in c]
    if not answers:
        return None
    return answers if isinstance(json.loads(body), list) else answers[0]


def _is_call(call: Any) -> bool:
    if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
        return False
    if not isinstance(call.get("method"), str):
        return False
    if "params" in call and not isinstance(call["params"], dict | list):
        return False
    ident = call.get("id")
    return ident is None or (isinstance(ident, str | int) and not isinstance(ident, bool))


def _rpc_error(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}


# A batch is read from the raw body, so that NDJSON (one job per line) works as well as a
# JSON array, and a bad item is refused naming its index.
BATCH_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/SubmitRequest"},
                "maxItems": MAX_BATCH,
            }
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "One SubmitRequest object per line"}
        },
    },
}
NDJSON = "application/x-ndjson"


class BatchError(ValueError):
    """A batch body that is not a list of submit requests; `index` names the bad item.

    `status` is 400 when the body does not parse at all, 422 when its content is wrong.
    """

    def __init__(self, message: str, index: int | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.index = index
        self.status = status


def batch_items(body: bytes, *, ndjson: bool) -> list[SubmitRequest]:
    """The submit requests of a batch body (a JSON array, or NDJSON with `ndjson`)."""
    try:
        text = body.decode()
        if ndjson:
            raw = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "NDJSON" if ndjson else "JSON"
        raise BatchError(f"the body is not valid {kind}: {exc}", status=400) from None
    if not isinstance(raw, list):
        raise BatchError("the body must be a JSON array of jobs (or NDJSON, one job a line)")
    if len(raw) > MAX_BATCH:
        raise BatchError(f"a batch holds at most {MAX_BATCH} jobs, got {len(raw)}")
    items = []
    for index, item in enumerate(raw):
        try:
            items.append(SubmitRequest.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "job"
            raise BatchError(f"item {index}: {where}: {first['msg']}", index) from None
    return items


# One server-sent event as OpenAPI 3.1 tools read `schema` under text/event-stream.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["ready", *EVENT_TYPES]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}
