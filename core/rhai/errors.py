"""Rhai errors: parse errors and runtime errors, each with Rhai's kind and a line/column."""

from __future__ import annotations

from typing import Any

Pos = tuple[int, int]
NO_POS: Pos = (0, 0)


class RhaiError(Exception):
    """Any error a Rhai script raises, at parse time or at run time.

    Attributes:
        kind: Rhai's name for the error, e.g. ``ErrorArithmetic`` or ``MalformedIndexExpr``.
        message: what went wrong, without the position.
        line: 1-based line (0 when unknown).
        col: 1-based column (0 when unknown).
    """

    kind = "Error"

    def __init__(self, message: str, pos: Pos | None = None) -> None:
        self.message = message
        self.line, self.col = pos or NO_POS
        super().__init__(message)

    @property
    def pos(self) -> Pos:
        """(line, col)."""
        return (self.line, self.col)

    def at(self, pos: Pos) -> RhaiError:
        """Set the position when it is still unknown; return self."""
        if not self.line:
            self.line, self.col = pos
        return self

    def __str__(self) -> str:
        where = f" (line {self.line}, position {self.col})" if self.line else ""
        return f"{self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind}: {self})"


class RhaiParseError(RhaiError):
    """The script does not parse; ``kind`` is Rhai's ParseErrorType name."""

    kind = "ParseError"

    def __init__(self, kind: str, message: str, pos: Pos | None = None) -> None:
        self.kind = kind
        super().__init__(message, pos)


class RhaiRuntimeError(RhaiError):
    """An error while the script runs (Rhai's EvalAltResult)."""

    kind = "ErrorRuntime"
    catchable = True

    def __init__(self, message: str, pos: Pos | None = None, kind: str | None = None) -> None:
        if kind is not None:
            self.kind = kind
        super().__init__(message, pos)


class ErrorThrown(RhaiRuntimeError):
    """`throw value`: ``value`` is what was thrown."""

    kind = "ErrorRuntime"

    def __init__(self, value: Any, text: str, pos: Pos | None = None) -> None:
        self.value = value
        super().__init__(f"Runtime error: {text}" if text else "Runtime error", pos)


class ErrorLimit(RhaiRuntimeError):
    """A sandbox limit was reached: ``limit`` names the Engine option. Not catchable."""

    catchable = False

    def __init__(self, kind: str, limit: str, message: str, pos: Pos | None = None) -> None:
        self.limit = limit
        super().__init__(f"{message} (limit {limit})", pos, kind)


class ErrorTerminated(RhaiRuntimeError):
    """The run was stopped from outside (timeout or cancellation). Not catchable."""

    kind = "ErrorTerminated"
    catchable = False


def runtime(kind: str, message: str, pos: Pos | None = None) -> RhaiRuntimeError:
    """Make a runtime error of the given Rhai kind."""
    return RhaiRuntimeError(message, pos, kind)


def parse_error(kind: str, message: str, pos: Pos | None = None) -> RhaiParseError:
    """Make a parse error of the given Rhai kind."""
    return RhaiParseError(kind, message, pos)


def arithmetic(message: str) -> RhaiRuntimeError:
    """ErrorArithmetic: overflow, division by zero and the like."""
    return RhaiRuntimeError(message, None, "ErrorArithmetic")


def mismatch(message: str) -> RhaiRuntimeError:
    """ErrorMismatchDataType."""
    return RhaiRuntimeError(message, None, "ErrorMismatchDataType")
