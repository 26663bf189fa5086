"""Errors and diagnostics of HeroScript, with line and column and a caret view."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# A str may hold these (JSON `"\\ud800"`, a mis-decoded file) but no UTF-8 output can.
LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class Severity(StrEnum):
    """How bad a diagnostic is; only errors stop a playbook from running."""

    ERROR = "error"
    WARNING = "warning"


def printable(text: str) -> str:
    """Return ``text`` with each lone surrogate replaced by U+FFFD.

    One character for one, so columns stay right; the result can be printed and
    encoded as UTF-8, which a lone surrogate makes raise.
    """
    if text.isascii():
        return text
    return LONE_SURROGATE_RE.sub("\ufffd", text)


# Messages and the line shown under them stay this short, whatever the input: a 1 MB key
# must not become a 1 MB error in a log, a reply or a terminal.
MAX_MESSAGE_CHARS = 300
CARET_CONTEXT = 60


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text`, cut in the middle (saying how much) when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]}…[{len(text) - 2 * keep:,} characters]…{text[-keep:]}"


def caret_view(source_line: str, col: int) -> str:
    """Return the source line and a caret under column ``col`` (1-based).

    Tabs before the caret are copied so that the caret lines up in a terminal; lone
    surrogates are shown as U+FFFD so that the view can always be printed. A long line
    is shown as a window around the column.
    """
    at = max(col - 1, 0)
    start = max(0, at - CARET_CONTEXT)
    end = at + CARET_CONTEXT
    prefix = "…" if start else ""
    suffix = "…" if len(source_line) > end else ""
    before = prefix + source_line[start:at]
    pad = "".join("\t" if ch == "\t" else " " for ch in before)
    return f"{prefix}{printable(source_line[start:end])}{suffix}\n{pad}^"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a text: 1-based line and column, and a message."""

    line: int
    col: int
    message: str
    severity: Severity = Severity.ERROR
    end_col: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: {self.message}"


class HeroScriptError(Exception):
    """A text that is not valid HeroScript.

    Attributes:
        line: 1-based line of the problem (0 when unknown).
        col: 1-based column of the problem (0 when unknown).
        message: what is wrong, without the position.
        source_line: the text of the offending line, for the caret view.
    """

    def __init__(self, message: str, line: int = 0, col: int = 0, source_line: str = "") -> None:
        self.message = shorten(message)
        self.line = line
        self.col = col
        self.source_line = source_line
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.line:
            return self.message
        head = f"line {self.line}, col {self.col}: {self.message}"
        if not self.source_line:
            return head
        return f"{head}\n{caret_view(self.source_line, self.col)}"

    def diagnostic(self) -> Diagnostic:
        """Return the error as a `Diagnostic` for validators."""
        return Diagnostic(self.line, self.col, self.message)


class ActionError(Exception):
    """An action that cannot run or that failed: names ``actor.action`` and the line.

    Attributes:
        method: ``actor.action``.
        message: what went wrong.
        line: 1-based line of the action (0 when not from a script).
        col: 1-based column of the offending parameter, or 1.
        param: the parameter concerned, if any.
        suggestion: the closest existing name for an unknown actor or action.
    """

    def __init__(
        self,
        method: str,
        message: str,
        line: int = 0,
        col: int = 1,
        param: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.method = method
        self.message = message
        self.line = line
        self.col = col
        self.param = param
        self.suggestion = suggestion
        # What the action asked of the job's retries: a RetryLater or NoRetry it raised.
        self.directive: RetryLater | NoRetry | None = None
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.method}: {self.message}"

    def diagnostic(self) -> Diagnostic:
        """Return the error as a `Diagnostic` for validators."""
        return Diagnostic(self.line, self.col, f"{self.method}: {self.message}")


class ActionFailed(Exception):
    """Raised by an action to fail with a plain message (no traceback in the job log)."""


class RetryLater(ActionFailed):
    """Raised by an action: this attempt failed, try again after `delay` seconds.

    It counts as an attempt of the job's `retries`; with none left the job ends in error.
    """

    def __init__(self, delay: float, message: str = "") -> None:
        self.delay = max(0.0, float(delay))
        super().__init__(message or f"retry in {self.delay:g}s")


class NoRetry(ActionFailed):
    """Raised by an action: this failure is final, whatever retries the job has left."""
