"""HeroScript: parse, validate, format and run it, and the actor registry behind it.

The parser is pure and fast enough for every keystroke of an editor:

    check_size(text)                        # text from outside: at most MAX_SCRIPT_BYTES
    playbook = parse(text)                  # raises HeroScriptError(line, col)
    problems = validate(text, registry)     # every problem as a Diagnostic
    results = await run_playbook(playbook, registry, ActionContext(job_id=7))
"""

from core.heroscript.actors.registry import (
    ENTRY_POINT_GROUP,
    ActionInfo,
    ActorInfo,
    ActorRegistry,
)
from core.heroscript.context import ActionContext
from core.heroscript.errors import (
    ActionError,
    ActionFailed,
    Diagnostic,
    HeroScriptError,
    NoRetry,
    RetryLater,
    Severity,
)
from core.heroscript.formatter import FormatError, format_action, format_playbook, format_text
from core.heroscript.highlight import Span, SpanKind, highlight_spans
from core.heroscript.limits import MAX_SCRIPT_BYTES, ScriptTooLargeError, check_size, script_size
from core.heroscript.model import Action, ActionKind, Playbook
from core.heroscript.params import ParamError, Params, Percent
from core.heroscript.parser import parse, parse_all, parse_errors
from core.heroscript.runner import ActionResult, PlaybookResult, run_action, run_playbook
from core.heroscript.settings import ActorsSettings
from core.heroscript.validate import validate

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_SCRIPT_BYTES",
    "Action",
    "ActionContext",
    "ActionError",
    "ActionFailed",
    "ActionInfo",
    "ActionKind",
    "ActionResult",
    "ActorInfo",
    "ActorRegistry",
    "ActorsSettings",
    "Diagnostic",
    "FormatError",
    "HeroScriptError",
    "NoRetry",
    "ParamError",
    "Params",
    "Percent",
    "Playbook",
    "PlaybookResult",
    "RetryLater",
    "ScriptTooLargeError",
    "Severity",
    "Span",
    "SpanKind",
    "check_size",
    "format_action",
    "format_playbook",
    "format_text",
    "highlight_spans",
    "parse",
    "parse_all",
    "parse_errors",
    "run_action",
    "run_playbook",
    "script_size",
    "validate",
]
