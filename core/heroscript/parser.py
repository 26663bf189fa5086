r"""HeroScript text to a `Playbook`: the splitter of spec §2 over the params parser of §3.

The parser follows the canonical V implementation (``heroscript.md``), except
for these deliberate choices on the quirks the spec lists (§8); each is tested
in ``tests/core/heroscript/test_quirks.py``:

Fixed (this port differs from V):

* **Blank lines in multi-line values are kept** (quirk 1,
  ``multiline_value_with_blank_lines``): paragraphs survive.
* **Quotes in multi-line values are kept as written** (quirk 2,
  ``multiline_quotes_inside``): ``it's "quoted"`` stays so.
* **``'`` and ``"`` are separate delimiters** (quirk 3,
  ``double_quote_inside_single_is_error``): ``'say "hi"'`` and ``"it's"``
  are values; ``\\'`` and ``\\"`` escape the delimiter.
* **``//`` starts a comment only at the start of a line or after whitespace,
  outside quotes** (quirk 4, ``unquoted_url_is_cut_at_double_slash``): an
  unquoted URL is kept whole, and a remark holding a quote no longer swallows
  the parameters after it.
* **A multi-line value may follow other params on its line** (quirk 5,
  ``multiline_opened_after_other_param_is_error``) and **any number of spaces
  may stand between ``:`` and its opening quote** (quirk 6,
  ``multiline_opening_with_4_spaces_is_folded``).
* **``name : x`` is ``name=x``** (quirk 10, ``space_before_colon``), not an
  arg plus an empty key.
* **List items are wrapped once** (quirk 11, ``list_first_item_with_space``,
  ``list_quoted_item_before_other_param``): ``'Dragon Fruit', Apple`` gives
  ``"Dragon Fruit",Apple``.

Kept (this port does what V does):

* A column-0 line ends a block; the indented lines after it are ignored
  (quirk 14, ``column0_comment_ends_block``), so HeroScript can live in
  Markdown. Continuation lines of a multi-line value must be indented too
  (quirk 7, ``unindented_continuation_breaks_multiline``).
* A block folds into one line: ``key:`` swallows the next token, a trailing
  ``key:`` is dropped and only the first word of an unquoted value is the
  value (quirks 8 and 9: ``empty_unquoted_value_swallows_next``,
  ``value_on_next_line_unquoted``, ``empty_unquoted_value_at_end_is_dropped``).
  Real scripts rely on it to open a quoted value on the next line.
* ``#`` is not a comment (quirk 12), ``id`` is dropped (13), and there is no
  error for an unterminated quote (15).
* Action names with three or more parts (``!!a.b.c``) and five or more ``!``
  are errors, as in V.

Every error carries a 1-based line and column of the source text, tabs counted
as one column.

A lone surrogate (``"\\ud800"`` from JSON, a mis-decoded file) is an error at
its line and column: it cannot be stored or printed as UTF-8. The action that
holds it is left out; the rest of the text parses with U+FFFD in its place, so
every other error is still found and every message can be printed.

Parsing is linear in the size of the text (issue 12); callers that take text
from outside bound it first with `core.heroscript.limits.check_size`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

from core.heroscript.errors import LONE_SURROGATE_RE, Diagnostic, HeroScriptError, printable
from core.heroscript.model import Action, ActionKind, Playbook
from core.heroscript.names import name_fix
from core.heroscript.tokenizer import WS, ParamLine, Segment, offset_position, parse_params


def split_lines(text: str) -> list[str]:
    r"""Split on ``\r\n``, ``\n`` and ``\r`` only; a final line end adds no line."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# A tabbed line is mapped a block at a time: the expanded start of every block is
# kept, so one lookup reads at most one block instead of the line up to the column.
_TAB_BLOCK = 512


def _column_mapper(raw: list[str]) -> Callable[[int, int], int]:
    """Map (line, column in the tab-expanded line) to the 1-based raw column.

    Counting from the start of the line for every lookup would be quadratic on a
    long tabbed line with many keys; the blocks are built once per line, with
    ``str.count`` (C speed), and each lookup bisects them.
    """
    blocks_of: dict[int, list[int]] = {}

    def to_col(line: int, ecol: int) -> int:
        text = raw[line - 1] if 0 < line <= len(raw) else ""
        if "\t" not in text:
            return ecol + 1
        starts = blocks_of.get(line)
        if starts is None:
            starts = [0]
            tabs = 0
            for at in range(_TAB_BLOCK, len(text), _TAB_BLOCK):
                tabs += text.count("\t", at - _TAB_BLOCK, at)
                starts.append(at + 3 * tabs)
            blocks_of[line] = starts
        block = max(bisect_right(starts, ecol) - 1, 0)
        seen = starts[block]
        index = block * _TAB_BLOCK
        for ch in text[index : index + _TAB_BLOCK]:
            width = 4 if ch == "\t" else 1
            if seen + width > ecol:
                return index + 1
            seen += width
            index += 1
        return len(text) + 1

    return to_col


def _locator(
    key_offsets: dict[str, int], segments: list[Segment], to_col: Callable[[int, int], int]
) -> Callable[[str], tuple[int, int]]:
    def locate(key: str) -> tuple[int, int]:
        offset = key_offsets.get(key)
        return (0, 0) if offset is None else offset_position(segments, offset, to_col)

    return locate


class _Pending:
    """An action line seen, its block still being collected."""

    __slots__ = ("action", "error", "lines")

    def __init__(self, action: Action | None, error: HeroScriptError | None) -> None:
        self.action = action
        self.error = error
        self.lines: list[ParamLine] = []


def _surrogate_errors(lines: list[str]) -> list[HeroScriptError]:
    """One error per line holding a lone surrogate, at the first one."""
    errors: list[HeroScriptError] = []
    for index, line in enumerate(lines):
        found = LONE_SURROGATE_RE.search(line)
        if found is not None:
            message = (
                f"invalid character U+{ord(found.group()):04X}: a lone surrogate is not "
                "valid Unicode (was the text decoded with the wrong encoding?)"
            )
            errors.append(HeroScriptError(message, index + 1, found.start() + 1, printable(line)))
    return errors


class _Splitter:
    def __init__(self, text: str, source: str, first_id: int) -> None:
        self.raw = split_lines(text)
        self.bad: list[HeroScriptError] = []
        if not text.isascii() and LONE_SURROGATE_RE.search(text) is not None:
            self.bad = _surrogate_errors(self.raw)
            self.raw = [printable(x) for x in self.raw]
        self.bad_lines = [err.line for err in self.bad]
        self.to_col = _column_mapper(self.raw)
        self.source = source
        self.next_id = first_id
        self.playbook = Playbook()
        self.errors: list[HeroScriptError] = []

    def holds_bad_line(self, first: int, last: int) -> bool:
        """Whether a line from ``first`` to ``last`` holds a lone surrogate."""
        at = bisect_left(self.bad_lines, first)
        return at < len(self.bad_lines) and self.bad_lines[at] <= last

    def error(self, message: str, line: int, ecol: int) -> HeroScriptError:
        return HeroScriptError(message, line, self.to_col(line, ecol), self.raw[line - 1])

    def action_line(self, stripped: str, line: int, ecol: int, comments: list[str]) -> _Pending:
        space = stripped.find(" ")
        token = stripped if space < 0 else stripped[:space]
        name = token.lstrip("!")
        bangs = len(token) - len(name)
        if bangs > 4:
            err = self.error(
                f"there is no action starting with {bangs} x ! (use ! to !!!!)", line, ecol + 4
            )
            return _Pending(None, err)
        parts = name.split(".")
        if len(parts) > 2:
            err = self.error(
                "for now we only support actions with 1 or 2 parts: "
                f"'{name}' has {len(parts)} (write actor.action)",
                line,
                ecol + bangs,
            )
            return _Pending(None, err)
        actor, action_name = ("core", parts[0]) if len(parts) == 1 else parts
        action = Action(
            id=0,
            kind=ActionKind.from_bangs(bangs),
            actor=name_fix(actor),
            name=name_fix(action_name),
            comments="\n".join(comments),
            line=line,
            col=self.to_col(line, ecol),
            end_line=line,
            source=self.source,
        )
        pending = _Pending(action, None)
        if space >= 0:
            rest = stripped[space + 1 :]
            lead = len(rest) - len(rest.lstrip(WS))
            if rest.strip(WS):
                pending.lines.append(ParamLine(rest.strip(WS), line, ecol + space + 1 + lead))
        return pending

    def finish(self, pending: _Pending) -> None:
        if pending.error is not None:
            self.errors.append(pending.error)
            return
        action = pending.action
        assert action is not None
        if self.holds_bad_line(action.line, action.end_line):
            return  # its surrogate is reported; its values would hold U+FFFD
        try:
            parsed = parse_params(pending.lines, self.to_col)
        except HeroScriptError as exc:
            exc.source_line = self.raw[exc.line - 1] if 0 < exc.line <= len(self.raw) else ""
            self.errors.append(exc)
            return
        parsed.params.values.pop("id", None)
        action.params = parsed.params
        action.id = self.next_id
        self.next_id += 1
        action.locate = _locator(parsed.key_offsets, parsed.segments, self.to_col)
        self.playbook.actions.append(action)

    def run(self) -> None:
        expanded = [x.replace("\t", "    ") if "\t" in x else x for x in self.raw]
        indents = [len(x) - len(x.lstrip(" ")) for x in expanded if x.strip(WS)]
        cut = min(indents) if indents else 0
        pending: _Pending | None = None
        comments: list[str] = []
        in_comments = False
        other: list[str] = []
        for index, full in enumerate(expanded):
            text = full[cut:]
            stripped = text.strip(WS)
            line = index + 1
            if not stripped:
                # Kept for multi-line values (quirk 1); normal params skip them.
                if pending is not None:
                    pending.lines.append(ParamLine("", line, cut))
                continue
            if pending is not None:
                if text.startswith("  ") and stripped[0] != "!":
                    pending.lines.append(ParamLine(text, line, cut))
                    if pending.action is not None:
                        pending.action.end_line = line
                    continue
                self.finish(pending)
                pending = None
                comments = []
            if in_comments:
                if text.startswith("//"):
                    comments.append(stripped.lstrip("/ "))
                    continue
                in_comments = False
                if stripped[0] != "!":
                    other.extend(comments)
                    comments = []
            if stripped[0] == "!" and not stripped.startswith("!["):
                lead = len(text) - len(text.lstrip(WS))
                pending = self.action_line(stripped, line, cut + lead, comments)
                comments = []
            elif text.startswith("//"):
                in_comments = True
                comments.append(stripped.lstrip("/ "))
        if pending is not None:
            self.finish(pending)
        if in_comments:
            other.extend(comments)
        self.playbook.othertext = "\n".join(other)
        if self.bad:
            # Stable: each action's errors are already in line order.
            self.errors = sorted(self.errors + self.bad, key=lambda err: err.line)


def parse_all(
    text: str, source: str = "", first_id: int = 1
) -> tuple[Playbook, list[HeroScriptError]]:
    """Parse ``text`` and collect every error instead of stopping at the first.

    Actions with errors are left out of the playbook; the others are kept.
    """
    splitter = _Splitter(text, source, first_id)
    splitter.run()
    return splitter.playbook, splitter.errors


def parse(text: str, source: str = "") -> Playbook:
    """Parse HeroScript ``text`` into a `Playbook`.

    Args:
        text: the script; Markdown or prose around the actions is ignored.
        source: a file name recorded on each action.

    Returns:
        The actions in order.

    Raises:
        HeroScriptError: the first problem, with line, column and a caret view.
    """
    playbook, errors = parse_all(text, source)
    if errors:
        raise errors[0]
    return playbook


def parse_errors(text: str) -> list[Diagnostic]:
    """Return every parse error of ``text`` as diagnostics (empty when valid)."""
    return [err.diagnostic() for err in parse_all(text)[1]]
