"""Errors and diagnostics of HeroScript, with line and column and a caret view."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a diagnostic is; only errors stop a playbook from running."""

    ERROR = "error"
    WARNING = "warning"


def caret_view(source_line: str, col: int) -> str:
    """Return the source line and a caret under column ``col`` (1-based).

    Tabs before the caret are copied so that the caret lines up in a terminal.
    """
    pad = "".join("\t" if ch == "\t" else " " for ch in source_line[: max(col - 1, 0)])
    return f"{source_line}\n{pad}^"


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
        self.message = message
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
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.method}: {self.message}"

    def diagnostic(self) -> Diagnostic:
        """Return the error as a `Diagnostic` for validators."""
        return Diagnostic(self.line, self.col, f"{self.method}: {self.message}")


class ActionFailed(Exception):
    """Raised by an action to fail with a plain message (no traceback in the job log)."""
