"""How large a HeroScript text may be, checked before anything parses it.

Parsing is linear, but a megabyte still costs about a second of pure Python, so
text that comes from outside (a request, a job, the editor) is measured first.
`check_size` costs one pass in C over at most the text and never parses.
"""

from __future__ import annotations

from core.heroscript.errors import HeroScriptError, printable

MAX_SCRIPT_BYTES = 48 * 1024
"""The default limit, in UTF-8 bytes: the job params limit.

It equals ``core.jobs.manager.MAX_PARAMS_BYTES`` (OurDB records are at most 64 KiB
and the params must leave room for the rest of the job), so any text that could
be a job's params passes and nothing larger is parsed.
"""

# The caret view is left out when the limit falls further into a line than this:
# the error should not echo the whole script.
_SHOWN_LINE_MAX = 200
# Measured a slice at a time, so a huge text is not copied whole as bytes.
_CHUNK = 1 << 20


class ScriptTooLargeError(HeroScriptError):
    """A text over the size limit; ``line`` and ``col`` are where it crosses it.

    Attributes:
        size: the text's size in UTF-8 bytes.
        limit: the limit it exceeds, in bytes.
    """

    def __init__(self, size: int, limit: int, line: int, col: int, source_line: str) -> None:
        self.size = size
        self.limit = limit
        message = f"the script is {size:,} bytes; the limit is {limit:,} bytes, reached here"
        super().__init__(message, line, col, source_line)


def script_size(text: str) -> int:
    """Return the UTF-8 size of ``text`` in bytes, as it would be stored.

    A lone surrogate counts as the 3 bytes ``surrogatepass`` writes, instead of
    raising `UnicodeEncodeError` as ``text.encode()`` does.
    """
    if text.isascii():  # O(1): CPython keeps the flag on the string
        return len(text)
    # A slice never splits a character: a str holds code points, not UTF-16 units.
    return sum(
        len(text[at : at + _CHUNK].encode("utf-8", "surrogatepass"))
        for at in range(0, len(text), _CHUNK)
    )


def check_size(text: str, limit: int = MAX_SCRIPT_BYTES) -> None:
    """Raise `ScriptTooLargeError` when ``text`` is over ``limit`` UTF-8 bytes.

    Call it before `parse`, `validate`, `format_text` or `highlight_spans` on text
    from outside; the error is a `HeroScriptError`, so a caller that reports parse
    errors reports this one too (``err.diagnostic()`` for an editor).

    Args:
        text: the script.
        limit: the largest size accepted, in bytes; 0 or less means no limit.

    Raises:
        ScriptTooLargeError: the text is larger, with the line and column of the
            first character past the limit.
    """
    if limit <= 0 or len(text) * 4 <= limit:  # at most 4 bytes per character
        return
    size = script_size(text)
    if size <= limit:
        return
    index = _chars_within(text, limit)
    line, start = _line_start(text, index)
    shown = ""
    if index - start <= _SHOWN_LINE_MAX:
        end = min(len(text), index + _SHOWN_LINE_MAX)
        shown = printable(text[start:end].split("\n", 1)[0].split("\r", 1)[0])
    raise ScriptTooLargeError(size, limit, line, index - start + 1, shown)


def _chars_within(text: str, limit: int) -> int:
    """Return how many leading characters of ``text`` fit in ``limit`` bytes."""
    # `limit` characters take at least `limit` bytes, so the cut falls inside them.
    data = text[:limit].encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return len(text[:limit])
    cut = limit
    while (data[cut] & 0xC0) == 0x80:  # back to the first byte of the character
        cut -= 1
    return len(data[:cut].decode("utf-8", "surrogatepass"))


def _line_start(text: str, index: int) -> tuple[int, int]:
    r"""Return the 1-based line of ``text[index]`` and the index where that line starts.

    Lines end at ``\r\n``, ``\n`` or ``\r``, as `core.heroscript.parser.split_lines` reads them.
    """
    breaks = text.count("\n", 0, index) + text.count("\r", 0, index)
    breaks -= text.count("\r\n", 0, index)
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    return breaks + 1, start
