"""Write actions back as HeroScript so that parsing the output gives the same actions.

Values are written bare when they are one safe word, otherwise quoted with
``'`` (or ``"`` when the value holds ``'`` but no ``"``), and values with
newlines as indented multi-line blocks. Every written action is parsed again
and compared, so the formatter never silently changes what a script means.
"""

from __future__ import annotations

import re

from core.heroscript.errors import HeroScriptError
from core.heroscript.model import Action, Playbook
from core.heroscript.parser import parse, parse_all, split_lines
from core.heroscript.tokenizer import WS, find_comment

_BARE_RE = re.compile(r"[A-Za-z0-9_.:@%+=~/-]+")
_INLINE_WIDTH = 80
_INLINE_MAX_PARAMS = 3
INDENT = "    "


class FormatError(ValueError):
    """An action holds a value that HeroScript cannot write without changing it."""


def _quote(value: str) -> str:
    delim = '"' if "'" in value and '"' not in value else "'"
    out: list[str] = []
    prev = ""
    for ch in value:
        # A quote right after a backslash would be read as an escape: escape it again.
        if ch == delim or (ch in "'\"" and prev == "\\"):
            out.append("\\")
        out.append(ch)
        prev = ch
    return f"{delim}{''.join(out)}{delim}"


def render_value(value: str) -> str:
    """Return the single-line form of ``value`` (bare word or quoted)."""
    if value and _BARE_RE.fullmatch(value) and "//" not in value:
        return value
    return _quote(value)


def _param_lines(key: str, value: str, indent: str) -> list[str]:
    if "\n" not in value:
        return [f"{indent}{key}:{render_value(value)}"]
    body = [f"{indent}{INDENT}{line}" if line else "" for line in value.split("\n")]
    return [f"{indent}{key}:'", *body, f"{indent}{INDENT}'"]


def render_action(action: Action, indent: str = "") -> str:
    """Write one action (without its comments), without checking it."""
    head = f"{indent}{action.kind.bangs}{action.actor}.{action.name}"
    if action.params.args:
        head += " " + " ".join(action.params.args)
    items = list(action.params.values.items())
    if not items:
        return head
    inline = " ".join(f"{k}:{render_value(v)}" for k, v in items if "\n" not in v)
    fits = len(head) + 1 + len(inline) <= _INLINE_WIDTH and len(items) <= _INLINE_MAX_PARAMS
    if fits and all("\n" not in v for _, v in items):
        return f"{head} {inline}"
    lines = [head]
    for key, value in items:
        lines.extend(_param_lines(key, value, indent + INDENT))
    return "\n".join(lines)


def _same(a: Action, b: Action) -> bool:
    return (a.kind, a.actor, a.name, a.params) == (b.kind, b.actor, b.name, b.params)


def format_action(action: Action, indent: str = "") -> str:
    """Write one action and check that it parses back to the same action.

    Raises:
        FormatError: a value (e.g. one with leading spaces or ``<BR>``) cannot be written.
    """
    text = render_action(action, indent)
    try:
        back = parse(text).actions
    except HeroScriptError as exc:
        raise FormatError(f"{action.method}: cannot be written back ({exc.message})") from None
    if len(back) != 1 or not _same(back[0], action):
        raise FormatError(f"{action.method}: a value cannot be written without changing it")
    return text


def format_playbook(playbook: Playbook) -> str:
    """Write a whole playbook, comments above their actions, a blank line between."""
    chunks: list[str] = []
    for action in playbook:
        comments = [f"// {line}" if line else "//" for line in action.comments.split("\n")]
        lines = comments if action.comments else []
        chunks.append("\n".join([*lines, format_action(action)]))
    return "\n\n".join(chunks) + ("\n" if chunks else "")


def _has_remarks(lines: list[str]) -> bool:
    for line in lines:
        stripped = line.strip(WS)
        if stripped.startswith("<!--") or find_comment(stripped) >= 0:
            return True
    return False


def format_text(text: str) -> str:
    """Reformat the actions inside ``text``, keeping every other line as written.

    Prose, Markdown and comments around actions stay. An action keeps its
    original lines when it cannot be written back safely or when its block
    holds ``//`` remarks, which the parsed form does not keep in place.

    Raises:
        HeroScriptError: ``text`` does not parse.
    """
    playbook, errors = parse_all(text)
    if errors:
        raise errors[0]
    lines = split_lines(text)
    out: list[str] = []
    done = 0
    for action in playbook:
        start, end = action.line - 1, action.end_line
        out.extend(lines[done:start])
        original = lines[start]
        indent = original[: len(original) - len(original.lstrip())]
        try:
            if _has_remarks(lines[start:end]):
                raise FormatError("keep the remarks where they are")
            out.append(format_action(action, indent))
        except FormatError:
            out.extend(lines[start:end])
        done = end
    out.extend(lines[done:])
    result = "\n".join(out)
    return result + "\n" if text.endswith(("\n", "\r")) or not text else result
