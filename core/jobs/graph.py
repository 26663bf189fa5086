"""Job graphs in HeroScript: `!!job.define` actions, each with its params, become one batch."""

from __future__ import annotations

from core.events import JobSpec
from core.heroscript import Action, HeroScriptError, ParamError, check_size, parse
from core.jobs.manager import JobError

# A graph is one batch: the same bound as a batch request body.
MAX_GRAPH_BYTES = 1024 * 1024
DEFINE = "job.define"
# The keys a `!!job.define` takes; anything else is a typo worth refusing.
KEYS = frozenset(
    {
        "name",
        "topic",
        "circle",
        "params_type",
        "params",
        "timeout",
        "after",
        "on_parent_error",
        "unique_key",
        "unique_for",
        "retries",
        "log",
    }
)


def graph_specs(text: str) -> list[JobSpec]:
    """The batch a graph text describes, in the order written; raises JobError.

    Each `!!job.define name:N` starts a job; the actions after it, up to the next
    `!!job.define`, are its HeroScript params (or `params:'...'` gives them inline, for
    other params types). `after:'a, b, 12'` names the jobs it waits for: names of this
    graph, or ids of existing jobs. Errors name the line and column.
    """
    try:
        check_size(text, MAX_GRAPH_BYTES)
        playbook = parse(text)
    except HeroScriptError as exc:
        raise JobError(f"graph: {exc}", line=exc.line, col=exc.col) from None
    lines = text.split("\n")
    specs: list[JobSpec] = []
    define: Action | None = None
    body: list[Action] = []
    for action in playbook.actions:
        if action.method == DEFINE:
            if define is not None:
                specs.append(_spec(define, body, lines))
            define, body = action, []
        elif define is None:
            raise JobError(
                f"graph: line {action.line}: {action.method} comes before any !!job.define",
                line=action.line,
                col=action.col,
            )
        else:
            body.append(action)
    if define is None:
        raise JobError("graph: no !!job.define in the text")
    specs.append(_spec(define, body, lines))
    return specs


def _spec(define: Action, body: list[Action], lines: list[str]) -> JobSpec:
    params = define.params

    def fail(message: str, key: str = "") -> JobError:
        line, col = define.key_position(key) if key else (define.line, define.col)
        return JobError(f"graph: line {line}: {message}", line=line, col=col)

    unknown = sorted(set(params) - KEYS)
    if unknown:
        raise fail(f"!!job.define does not take {unknown[0]!r}", unknown[0])
    if not params.exists("name"):
        raise fail("!!job.define needs a name")
    name = params.get("name")
    if params.exists("params") and body:
        raise fail(f"job {name!r} has both params:'...' and actions after it", "params")
    if body:
        first, last = body[0].line, max(a.end_line or a.line for a in body)
        script = "\n".join(lines[first - 1 : last]).strip("\n")
    else:
        script = params.get_default("params", "")
    after: list[int | str] = []
    try:
        for item in params.get_list_default("after", []):
            after.append(int(item) if item.isdigit() else item)
        timeout = params.get_float_default("timeout", 60.0)
        retries = params.get_int("retries") if params.exists("retries") else None
        unique_for = params.get_float_default("unique_for", 0.0)
        log = params.get_default_false("log")
    except ParamError as exc:
        raise fail(f"job {name!r}: {exc}", exc.key) from None
    return JobSpec(
        script,
        params.get_default("topic", "default"),
        params.get_default("circle", "default"),
        params.get_default("params_type", "heroscript"),
        timeout,
        log,
        retries=retries,
        unique_key=params.get_default("unique_key", ""),
        unique_for=unique_for,
        depends_on=tuple(after),
        on_parent_error=params.get_default("on_parent_error", "fail"),
        name=name,
    )
