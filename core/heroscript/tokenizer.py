"""The params parser (spec §3): folds a block into one line, then tokenizes it.

Positions survive the folding: every piece of the folded line remembers the
source line and column it came from, so an error points at the character the
user wrote, not at the folded text.

Every step is linear in the length of its input: the scanners jump with
``str.find`` and possessive (non-backtracking) regexes, values and keys are
built from lists of pieces, and no line is searched again from its start.
Issue 12 showed what the opposite costs: a regex searched per line made a
48,000-character value take 11 s.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import NamedTuple

from core.heroscript.errors import HeroScriptError
from core.heroscript.params import Params

WS = " \t\n\r\v\f"
_CLOSERS = frozenset({"'", '"', "'''", '"""'})
_KEY_CHARS_RE = re.compile(r"[A-Za-z0-9_,.]++")
_VALUE_CHARS_RE = re.compile(r"[^ ,]++")
_SPACES_RE = re.compile(r" *+")
_WORD_END_RE = re.compile(r"[^ :]*+")
# Outside quotes only these matter to `find_comment`: a quote, or `//` at the start or
# after a blank (the lookbehind reads one character, so the search stays linear).
_COMMENT_OR_QUOTE_RE = re.compile(r"""['"]|(?<![^ \t])//""")
_QUOTE_RE = re.compile(r"""['"]""")
# Read backwards from a colon: the run of key characters before it (see `_opener`).
_KEY_TAIL_RE = re.compile(r"""[^\s:'"]*+""")
# Stands in the folded line for a multi-line value; `_Folder.body_at` says where the
# folder put one, so a NUL the user typed is never taken for a mark.
_BODY_MARK = "\x00"


class ParamLine(NamedTuple):
    """One line of parameter text: tab-expanded text, its 1-based line, and its column.

    ``col`` is the 0-based column of ``text[0]`` in the tab-expanded source line.
    """

    text: str
    line: int
    col: int


class Segment(NamedTuple):
    """Where a piece of the folded line came from; ``linear`` maps char by char."""

    start: int
    line: int
    col: int
    linear: bool


ColumnMapper = Callable[[int, int], int]


def _identity_cols(_line: int, col: int) -> int:
    return col + 1


def _quote_end(text: str, quote: str, start: int, end: int) -> int:
    """Return where the quote opened before ``start`` closes, or -1 (a backslash escapes it)."""
    j = text.find(quote, start, end)
    while j > 0 and text[j - 1] == "\\":
        j = text.find(quote, j + 1, end)
    return j


def find_comment(text: str) -> int:
    """Return where a ``//`` comment starts in ``text``, or -1.

    A ``//`` starts a comment at the start of the text or after whitespace,
    outside quotes. This differs from V on purpose (see the module docs of
    `core.heroscript.parser`): unquoted URLs survive and a remark holding a
    quote no longer swallows the parameters after it.
    """
    if "//" not in text:
        return -1
    n = len(text)
    i = 0
    while True:
        found = _COMMENT_OR_QUOTE_RE.search(text, i)
        if found is None:
            return -1
        if found.group() == "//":
            return found.start()
        close = _quote_end(text, found.group(), found.end(), n)
        if close < 0:
            return -1
        i = close + 1


def _in_quote(text: str, end: int) -> bool:
    """Whether ``text[:end]`` leaves a quote open, quotes read as `find_comment` does."""
    i = 0
    while True:
        found = _QUOTE_RE.search(text, i, end)
        if found is None:
            return False
        close = _quote_end(text, found.group(), found.end(), end)
        if close < 0:
            return True
        i = close + 1


class _Opening(NamedTuple):
    """A multi-line opener at the end of a line: ``name:'`` and where it starts."""

    start: int
    name: str


def _opener(text: str) -> _Opening | None:
    """Return the multi-line opener ending ``text``, if it really opens.

    An opener is a key (possibly empty), spaces, ``:``, spaces and one of
    ``'''``, ``\"\"\"``, ``'`` or ``"`` that ends the line. It is found from the
    end of the line, never by a regex search that would retry at every column.
    """
    quote = text[-1:]
    if quote not in ("'", '"'):
        return None
    size = 3 if text.endswith(quote * 3) else 1
    # A run of 2 (or more than 3) quotes never opens: the char before the opener's
    # quote(s) must be a space or the colon.
    head = text[: len(text) - size].rstrip(" ")
    if not head.endswith(":"):
        return None
    before = head[:-1].rstrip(" ")
    # Reversed, the key run is a plain prefix match: linear, no retry per column.
    tail = _KEY_TAIL_RE.match(before[::-1])
    assert tail is not None  # the pattern matches the empty string
    start = len(before) - tail.end()
    # The quote must open a value, not close one (`title:'a: '` is a whole value).
    if _in_quote(text, len(text) - size):
        return None
    return _Opening(start, before[start:])


def _dedent_body(lines: list[str]) -> str:
    indents = [len(x) - len(x.lstrip(" ")) for x in lines if x.strip(WS)]
    cut = min(indents) if indents else 0
    body = "\n".join(x[cut:] if x.strip(WS) else "" for x in lines)
    return body.replace("<<BR>>", "\n").replace("<BR>", "\n").strip(WS)


class _Folder:
    """Step 3: turn parameter lines into one line of tokens, keeping positions."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.segments: list[Segment] = []
        self.bodies: list[str] = []
        # Offset of each body mark in the folded line (just after its quote) -> body.
        self.body_at: dict[int, int] = {}
        self.offset = 0

    def emit(self, piece: str, line: int, col: int, linear: bool = True) -> None:
        self.segments.append(Segment(self.offset, line, col, linear))
        self.pieces.append(piece)
        self.offset += len(piece) + 1

    def emit_comment(self, lines: list[str], line: int, col: int) -> None:
        text = "\\\\n".join(x.strip(" <->/\n") for x in lines)
        # `-/` ends a comment token, so it must not appear inside one.
        self.emit("//" + text.replace("-/", "- /") + "-/", line, col, linear=False)

    def fold(self, lines: Sequence[ParamLine]) -> str:
        mode = 0  # 0 normal, 1 comment block, 2 multi-line value
        comment: list[str] = []
        comment_at = (0, 0)
        body: list[str] = []
        header = ("", 0, 0)
        for text, line, col in lines:
            stripped = text.strip(WS)
            if mode == 2:
                if stripped in _CLOSERS:
                    self._close_body(header, body)
                    mode = 0
                else:
                    body.append(text)
                continue
            if mode == 1:
                if stripped.endswith("-->") or not stripped.startswith("//"):
                    self.emit_comment(comment, *comment_at)
                    mode = 0
                else:
                    comment.append(stripped)
                    continue
            if not stripped:
                continue
            tcol = col + len(text) - len(text.lstrip(WS))
            if stripped.startswith("<!--"):
                rest = stripped.replace("<!--", "").strip(WS)
                if rest:
                    mode, comment, comment_at = 1, [rest], (line, tcol)
                continue
            at = find_comment(stripped)
            if at >= 0:
                before = stripped[:at].rstrip(WS)
                if not before:
                    mode, comment, comment_at = 1, [stripped[at + 2 :]], (line, tcol + at)
                    continue
                # V emits an end-of-line remark before the line's own content.
                self.emit_comment([stripped[at + 2 :]], line, tcol + at)
                stripped = before
            found = _opener(stripped)
            if found is not None:
                prefix = stripped[: found.start].rstrip(WS)
                if prefix:
                    self.emit(prefix, line, tcol)
                header = (found.name, line, tcol + found.start)
                body = []
                mode = 2
                continue
            self.emit(stripped, line, tcol)
        if mode == 2:
            self._close_body(header, body)
        elif mode == 1:
            self.emit_comment(comment, *comment_at)
        return " ".join(self.pieces)

    def _close_body(self, header: tuple[str, int, int], body: list[str]) -> None:
        name, line, col = header
        index = len(self.bodies)
        self.bodies.append(_dedent_body(body))
        self.body_at[self.offset + len(name) + 2] = index
        self.emit(f"{name}:'{_BODY_MARK}{index}'", line, col)


class ParsedParams(NamedTuple):
    """The params of one action and a function giving each key's (line, col)."""

    params: Params
    key_offsets: dict[str, int]
    segments: list[Segment]


def _normalize(value: str) -> str:
    if "\\" in value:
        value = value.replace("\\\\n", "\n").replace("\\'", "'").replace('\\"', '"')
    if "<" in value:
        value = value.replace("<<BR>>", "\n").replace("<BR>", "\n")
    return value.strip(WS)


def _wrap_last(parts: list[str]) -> None:
    """Put the last list item of the value in ``parts`` in double quotes when it holds a space.

    The value is kept as pieces so that a list of many items costs linear time:
    only the pieces after the last comma are read, and each is read once, since a
    comma piece follows every call. V duplicates a first item here; this port
    does not (quirk 11).
    """
    k = len(parts) - 1
    while k >= 0 and "," not in parts[k]:
        k -= 1
    if k < 0:
        head, last = "", "".join(parts)
    else:
        cut = parts[k].rfind(",") + 1
        head, last = parts[k][:cut], parts[k][cut:] + "".join(parts[k + 1 :])
    if " " not in last or (last.startswith('"') and last.endswith('"')):
        return
    del parts[max(k, 0) :]
    if head:
        parts.append(head)
    parts.append(f'"{last}"')


def offset_position(
    segments: Sequence[Segment], offset: int, to_col: ColumnMapper
) -> tuple[int, int]:
    """Map an offset in the folded line back to the source's 1-based (line, col)."""
    # `key=` bisects the segments themselves: no list of starts built per call.
    index = bisect_right(segments, offset, key=lambda s: s.start) - 1
    if index < 0:
        return (0, 0)
    seg = segments[index]
    ecol = seg.col + (offset - seg.start if seg.linear else 0)
    return seg.line, to_col(seg.line, ecol)


class _Tokenizer:
    """Step 4: the character state machine, jumping over runs with regexes.

    Keys, values and comments are lists of pieces joined when stored: adding to
    a ``str`` copies it, which made a long value quadratic.
    """

    def __init__(self, text: str, folder: _Folder, to_col: ColumnMapper) -> None:
        self.text = text
        self.folder = folder
        self.to_col = to_col
        self.params = Params()
        self.key_offsets: dict[str, int] = {}
        # Mirrors `params.args`: a set test instead of a scan of the list per arg.
        self.seen_args: set[str] = set()

    def position(self, offset: int) -> tuple[int, int]:
        return offset_position(self.folder.segments, offset, self.to_col)

    def fail(self, offset: int, key_start: int) -> HeroScriptError:
        text = self.text
        word_end = _WORD_END_RE.match(text, offset)
        assert word_end is not None  # the pattern matches the empty string
        word = text[key_start : word_end.end()]
        bad = text[offset]
        hint = " ('#' is not a comment; use //)" if bad == "#" else " (A-Z a-z 0-9 _ , . /)"
        last = next(reversed(self.params.values.items()), None)
        if bad in "'\"" and offset == key_start and last is not None and last[1].endswith(":"):
            message = (
                f"nested parameters are not supported: '{last[0]}' took "
                f"'{last[1]}' as its value (quote values, one key per name)"
            )
        elif bad in "'\"" and offset == key_start:
            message = f"unexpected {bad}: a value ended before it (escape it as \\{bad})"
        else:
            message = f"key '{word}' has a character not allowed in keys{hint}"
        line, col = self.position(offset)
        return HeroScriptError(message, line, col)

    def store(
        self,
        key_parts: list[str],
        parts: list[str],
        comment: str,
        key_start: int,
        body: int | None,
    ) -> None:
        key = "".join(key_parts).lower().strip(WS).lstrip("/")
        value = "".join(parts)
        if body is not None and value.startswith(mark := f"{_BODY_MARK}{body}"):
            # Text after a multi-line value (`,more` on the next line) is appended; it
            # used to make `int()` of the mark fail.
            rest = value[len(mark) :]
            value = self.folder.bodies[body] + (_normalize(rest) if rest else "")
        else:
            value = _normalize(value)
        values = self.params.values
        if key in values:
            del values[key]
        values[key] = value
        self.key_offsets[key] = key_start
        if comment:
            self.params.comments[key] = _normalize(comment).rstrip("-" + WS)

    def store_arg(self, key_parts: list[str], comment: str) -> None:
        word = "".join(key_parts).strip(" '").lstrip("/")
        if word.lower() not in self.seen_args:
            self.params.args.append(word)
            self.seen_args.add(word)
        if comment:
            self.params.arg_comments.append(_normalize(comment).rstrip("-" + WS))

    def run(self) -> Params:
        text, n = self.text, len(self.text)
        key: list[str] = []
        value: list[str] = []
        comment: list[str] = []
        quote = ""
        in_list = False
        body: int | None = None  # the multi-line value the last quote opened, if any
        key_start = 0
        state = "start"
        i = 0
        while i < n:
            ch = text[i]
            if state == "after":
                if ch == " ":
                    i = _skip_spaces(text, i)
                    continue
                if ch == ",":
                    in_list = True
                    _wrap_last(value)
                    value.append(",")
                    state = "wait"
                    i += 1
                    continue
                if in_list:
                    _wrap_last(value)
                self.store(key, value, "".join(comment), key_start, body)
                key, value, comment = [], [], []
                in_list = False
                body = None
                state = "start"
            if state == "start":
                if ch == " ":
                    i = _skip_spaces(text, i)
                    continue
                state = "key"
                key_start = i
            if state == "key":
                run = _KEY_CHARS_RE.match(text, i)
                if run is not None:
                    key.append(run.group())
                    i = run.end()
                elif ch == "/":
                    if i and text[i - 1] == "/":
                        state = "comment"
                    else:
                        key.append(ch)
                    i += 1
                elif ch == ":":
                    state = "wait"
                    i += 1
                elif ch == " ":
                    j = _skip_spaces(text, i)
                    if key and j < n and text[j] == ":":
                        # `name : x` means name=x here; V made an arg and an empty key.
                        i = j
                        continue
                    self.store_arg(key, "".join(comment))
                    key, comment, value = [], [], []
                    state = "start"
                    # The spaces are skipped once, not scanned again by "start".
                    i = j
                else:
                    raise self.fail(i, key_start)
                continue
            if state == "wait":
                if ch == "'" or ch == '"':
                    quote = ch
                    state = "quoted"
                    body = self.folder.body_at.get(i + 1)
                    i += 1
                    continue
                if ch == " ":
                    i = _skip_spaces(text, i)
                    continue
                state = "value"
            if state == "value":
                run = _VALUE_CHARS_RE.match(text, i)
                if run is not None:
                    value.append(run.group())
                    i = run.end()
                if i < n:
                    if text[i] == ",":
                        value.append(",")
                        in_list = True
                        state = "wait"
                    else:
                        state = "after"
                        in_list = False
                    i += 1
                continue
            if state == "quoted":
                j = _quote_end(text, quote, i, n)
                if j < 0:
                    value.append(text[i:])
                    i = n
                else:
                    value.append(text[i:j])
                    i = j + 1
                    state = "after"
                continue
            # state == "comment": runs until `-/`.
            j = text.find("-/", i)
            if j < 0:
                comment.append(text[i:])
                i = n
            else:
                comment.append(text[i : j + 1])
                i = j + 2
                state = "start"
        if state in ("value", "quoted", "after"):
            if in_list:
                _wrap_last(value)
            self.store(key, value, "".join(comment), key_start, body)
        elif state == "key" and key:
            self.store_arg(key, "".join(comment))
        return self.params


def _skip_spaces(text: str, i: int) -> int:
    """Return the index of the first non-space at or after ``i``."""
    run = _SPACES_RE.match(text, i)
    assert run is not None  # ` *+` matches the empty string
    return run.end()


def parse_params(lines: Sequence[ParamLine], to_col: ColumnMapper = _identity_cols) -> ParsedParams:
    """Parse the parameter lines of one action.

    Args:
        lines: the inline part and the block lines, tabs expanded.
        to_col: maps (line, 0-based expanded column) to the 1-based column of the source.

    Returns:
        The params, the folded offset of each key and the folding segments.

    Raises:
        HeroScriptError: a key holds a character outside ``A-Z a-z 0-9 _ , . /``.
    """
    folder = _Folder()
    folded = folder.fold(lines)
    tokenizer = _Tokenizer(folded, folder, to_col)
    params = tokenizer.run()
    return ParsedParams(params, tokenizer.key_offsets, folder.segments)


def parse_params_text(text: str) -> Params:
    """Parse a bare parameter text, as V's ``paramsparser.parse`` does."""
    lines = [ParamLine(x.replace("\t", "    "), i + 1, 0) for i, x in enumerate(text.splitlines())]
    return parse_params(lines).params
