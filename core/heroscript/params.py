"""The parameters of one action and their typed getters (spec §5).

The parser stores every value as a string; the getters here convert on demand.
The same conversion functions (``to_int``, ``to_float``, …) bind actor method
parameters, so a script means the same thing to a getter and to an actor.

Beyond the spec, ``get_duration`` reads ``90``, ``1.5`` (seconds), ``500ms``,
``10s``, ``5m``, ``2h``, ``1d``, ``1w`` and sums like ``1h30m``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

from core.heroscript.names import name_fix

_INT_RE = re.compile(r"[+-]?\d+(?:_\d+)*")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d|w)", re.IGNORECASE)
_DURATION_FULL_RE = re.compile(
    r"(?:\d+(?:\.\d+)?\s*(?:ms|s|sec|m|min|h|hr|d|w)\s*)+", re.IGNORECASE
)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_TRUE_WORDS = frozenset({"1", "true", "y", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "n", "no", "off"})
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

_T = TypeVar("_T")


class Percent(float):
    """A fraction from 0.0 to 1.0 written as a percentage (``10%`` or ``10``)."""


class ParamError(ValueError):
    """A parameter is missing or its value does not convert; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def to_int(value: str, bounds: tuple[int, int] = INT64) -> int:
    """Convert a decimal with optional sign and single ``_`` between digits."""
    text = value.strip()
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"'{value}' is not an integer")
    number = int(text)
    if not bounds[0] <= number <= bounds[1]:
        raise ValueError(f"'{value}' is out of range")
    return number


def to_float(value: str) -> float:
    """Convert a float; a ``%`` makes it a fraction (``10%`` gives 0.1)."""
    text = value.strip()
    percent = "%" in text
    try:
        number = float(text.replace("%", "").replace("_", "") if percent else text)
    except ValueError:
        raise ValueError(f"'{value}' is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"'{value}' is not a finite number")
    return number / 100 if percent else number


def to_percent(value: str) -> Percent:
    """Convert ``0``–``100`` (with or without ``%``) to a fraction."""
    try:
        number = float(value.strip().replace("%", ""))
    except ValueError:
        raise ValueError(f"'{value}' is not a percentage") from None
    if not 0 <= number <= 100:
        raise ValueError(f'percentage "{value}" needs to be between 0 and 100')
    return Percent(number / 100)


def _bool_word(value: str) -> str:
    return name_fix(value).replace("_", "")


def to_bool(value: str) -> bool:
    """Convert a yes/no word strictly: 1/true/y/yes/on or 0/false/n/no/off."""
    word = _bool_word(value)
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"'{value}' is not a boolean (use true or false)")


def to_list(value: str) -> list[str]:
    """Split a list value on ``,`` and strip quotes and spaces from each item."""
    text = value.strip("[] ")
    items = (item.strip("\"' ") for item in text.split(","))
    return [item for item in items if item]


def to_duration(value: str) -> timedelta:
    """Convert seconds (``90``, ``1.5``) or unit sums (``1h30m``, ``500ms``)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        if not _DURATION_FULL_RE.fullmatch(text):
            raise ValueError(f"'{value}' is not a duration (e.g. 30, 10s, 5m, 1h30m)") from None
        seconds = sum(
            float(num) * _UNIT_SECONDS[unit.lower()]
            for num, unit in _DURATION_PART_RE.findall(text)
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"'{value}' is not a duration")
    return timedelta(seconds=seconds)


class Params:
    """Ordered string parameters, positional args and their comments.

    Attributes:
        values: key to value, in V's order (a repeated key moves to the end).
        args: positional words, in order.
        comments: comments attached to params (key to text), metadata only.
        arg_comments: comments attached to positional args, metadata only.
    """

    __slots__ = ("arg_comments", "args", "comments", "values")

    def __init__(self, values: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})
        self.args: list[str] = list(args or [])
        self.comments: dict[str, str] = {}
        self.arg_comments: list[str] = []

    def __repr__(self) -> str:
        return f"Params({self.values!r}, args={self.args!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return list(self.values.items()) == list(other.values.items()) and self.args == other.args

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def exists(self, key: str) -> bool:
        """Whether ``key`` (lowercased, stripped, no name_fix, as in V) is set."""
        return key.lower().strip() in self.values

    def _raw(self, key: str) -> str | None:
        found = self.values.get(name_fix(key))
        if found is None:
            found = self.values.get(key.lower().strip())
        return found

    def get(self, key: str) -> str:
        """Return the value of ``key`` trimmed; raise `ParamError` if it is missing."""
        found = self._raw(key)
        if found is None:
            raise ParamError(key, f"Did not find key:{key}")
        return found.strip()

    def get_default(self, key: str, default: str) -> str:
        """Return the value of ``key`` or ``default`` when it is missing."""
        found = self._raw(key)
        return default if found is None else found.strip()

    def _convert(self, key: str, convert: Callable[[str], _T], what: str) -> _T:
        value = self.get(key)
        try:
            return convert(value)
        except ValueError as exc:
            message = f"Parameter {key} = {value} is not a valid {what}: {exc}"
            raise ParamError(key, message) from None

    def get_int(self, key: str) -> int:
        """Return ``key`` as a signed 32-bit integer."""
        return self._convert(key, lambda v: to_int(v, INT32), "signed 32-bit integer")

    def get_int_default(self, key: str, default: int) -> int:
        """Return ``key`` as an integer, or ``default`` when missing."""
        return self.get_int(key) if self._raw(key) is not None else default

    def get_float(self, key: str) -> float:
        """Return ``key`` as a float; ``10%`` gives 0.1."""
        return self._convert(key, to_float, "64-bit float")

    def get_float_default(self, key: str, default: float) -> float:
        """Return ``key`` as a float, or ``default`` when missing."""
        return self.get_float(key) if self._raw(key) is not None else default

    def get_percentage(self, key: str) -> Percent:
        """Return ``key`` (0–100, ``%`` optional) as a fraction."""
        return self._convert(key, to_percent, "percentage")

    def get_default_true(self, key: str) -> bool:
        """True when missing, empty, 1, true, y or yes; false otherwise."""
        found = self._raw(key)
        word = _bool_word(found) if found is not None else ""
        return word in {"", "1", "true", "y", "yes"}

    def get_default_false(self, key: str) -> bool:
        """False when missing, empty, 0, false, n or no; true otherwise."""
        found = self._raw(key)
        word = _bool_word(found) if found is not None else ""
        return word not in {"", "0", "false", "n", "no"}

    def get_bool(self, key: str) -> bool:
        """Return ``key`` as a strict boolean (true/false, yes/no, 1/0, on/off)."""
        return self._convert(key, to_bool, "boolean")

    def get_list(self, key: str) -> list[str]:
        """Return ``key`` split on commas, items stripped of quotes and spaces."""
        return to_list(self.get(key))

    def get_list_default(self, key: str, default: list[str]) -> list[str]:
        """Return ``key`` as a list, or ``default`` when missing."""
        return self.get_list(key) if self._raw(key) is not None else default

    def get_list_namefix(self, key: str) -> list[str]:
        """Return ``key`` as a list with `name_fix` applied to each item."""
        return [name_fix(item) for item in self.get_list(key)]

    def get_list_int(self, key: str) -> list[int]:
        """Return ``key`` as a list of integers; the error names the entry."""
        return [self._item(key, item, to_int) for item in self.get(key).split(",")]

    def get_list_float(self, key: str) -> list[float]:
        """Return ``key`` as a list of floats; the error names the entry."""
        return [self._item(key, item, to_float) for item in self.get(key).split(",")]

    @staticmethod
    def _item(key: str, item: str, convert: Callable[[str], _T]) -> _T:
        try:
            return convert(item.strip())
        except ValueError as exc:
            raise ParamError(key, f"Parameter {key}: entry '{item.strip()}' {exc}") from None

    def get_duration(self, key: str) -> timedelta:
        """Return ``key`` as a duration (``30``, ``10s``, ``5m``, ``1h30m``)."""
        return self._convert(key, to_duration, "duration")

    def get_arg(self, nr: int) -> str:
        """Return positional arg ``nr`` (0-based)."""
        if nr >= len(self.args):
            raise ParamError(str(nr), f"Looking for arg nr {nr}, not enough args available.")
        return self.args[nr]

    def get_arg_default(self, nr: int, default: str) -> str:
        """Return positional arg ``nr`` or ``default``."""
        return self.args[nr] if nr < len(self.args) else default

    def exists_arg(self, word: str) -> bool:
        """Whether ``word`` is a positional arg (lowercased comparison)."""
        return word.lower() in (arg.lower() for arg in self.args)

    def len_arg(self) -> int:
        """Number of positional args."""
        return len(self.args)
