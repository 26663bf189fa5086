"""Live validation for editors: every problem of a text, each with line and column."""

from __future__ import annotations

from core.heroscript.actors.registry import ActorRegistry
from core.heroscript.errors import ActionError, Diagnostic
from core.heroscript.limits import ScriptTooLargeError, check_size
from core.heroscript.parser import parse_all


def validate(
    text: str, registry: ActorRegistry | None = None, *, limit: int = 0
) -> list[Diagnostic]:
    """Return every parse error and, given a registry, every binding problem.

    Binding problems are unknown actors and actions (with the closest name),
    unknown, missing and ill-typed parameters. Nothing runs.

    Args:
        text: the script as it stands in the editor.
        registry: the actors to check against; None checks syntax only.
        limit: the largest text, in UTF-8 bytes, that is parsed at all (e.g.
            `core.heroscript.limits.MAX_SCRIPT_BYTES`); a larger one gives a single
            diagnostic where it passes the limit. 0, the default, parses any size.

    Returns:
        Diagnostics sorted by position; empty when the text is fine.
    """
    try:
        check_size(text, limit)
    except ScriptTooLargeError as exc:
        return [exc.diagnostic()]
    playbook, errors = parse_all(text)
    found = [err.diagnostic() for err in errors]
    if registry is not None:
        for action in playbook:
            try:
                registry.bind(action)
            except ActionError as exc:
                found.append(exc.diagnostic())
    return sorted(found, key=lambda d: (d.line, d.col))
