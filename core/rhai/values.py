"""Rhai values in Python: chars, function pointers, ranges, timestamps, and how they print."""

from __future__ import annotations

import math
import threading
import time
from decimal import Decimal
from typing import Any

INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1


class Char(str):
    """A Rhai ``char``: a one-character string that knows it is a char."""

    __slots__ = ()


class Cell:
    """A shared variable: a closure captured it, so the closure and its scope see one value."""

    __slots__ = ("shared", "v")

    def __init__(self, v: Any) -> None:
        self.v = v
        self.shared = False


class FnPtr:
    """A function pointer: a name, curried arguments, and for closures the compiled body."""

    __slots__ = ("curry", "fn", "name")

    def __init__(self, name: str, curry: tuple[Any, ...] = (), fn: Any = None) -> None:
        self.name = name
        self.curry = curry
        self.fn = fn  # a compiled closure, or None for a named function

    @property
    def is_anonymous(self) -> bool:
        """True for closures."""
        return self.fn is not None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FnPtr)
            and self.name == other.name
            and self.fn is other.fn
            and self.curry == other.curry
        )

    def __hash__(self) -> int:
        return hash(self.name)


class Range:
    """``a..b`` (exclusive) or ``a..=b`` (inclusive); open ends are None."""

    __slots__ = ("end", "inclusive", "start")

    def __init__(self, start: Any, end: Any, inclusive: bool) -> None:
        self.start = start
        self.end = end
        self.inclusive = inclusive

    def bounds(self, length: int) -> tuple[int, int]:
        """Start and exclusive end over a sequence of ``length``; negatives count from the end.

        Both are clamped into 0..length; an empty range has end <= start.
        """
        start = 0 if self.start is None else self.start
        if self.end is None:
            end = length
        else:
            end = self.end
            if end < 0:
                end += length
            if self.inclusive:
                s = self.start or 0
                s = max(s + length, 0) if s < 0 else s
                end = end + 1 if end > s else s
        if start < 0:
            start = max(start + length, 0)
        return min(start, length), max(min(end, length), 0)

    def py_range(self) -> range:
        """The integers of this range."""
        start = 0 if self.start is None else self.start
        end = INT_MAX if self.end is None else self.end
        return range(start, end + 1 if self.inclusive else end)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Range) and self.py_range() == other.py_range()

    def __hash__(self) -> int:
        return hash((self.start, self.end, self.inclusive))


class Timestamp:
    """A point in time from ``timestamp()``."""

    __slots__ = ("t",)

    def __init__(self, t: float | None = None) -> None:
        self.t = time.monotonic() if t is None else t

    @property
    def elapsed(self) -> float:
        """Seconds since this point."""
        return time.monotonic() - self.t

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and self.t == other.t

    def __hash__(self) -> int:
        return hash(self.t)


_TYPE_NAMES: dict[type, str] = {
    int: "i64",
    float: "f64",
    bool: "bool",
    str: "string",
    Char: "char",
    type(None): "()",
    list: "array",
    dict: "map",
    bytearray: "blob",
    FnPtr: "Fn",
    Timestamp: "timestamp",
}


def type_name(v: Any) -> str:
    """Rhai's ``type_of`` name."""
    t = type(v)
    name = _TYPE_NAMES.get(t)
    if name is not None:
        return name
    if t is Range:
        return "range=" if v.inclusive else "range"
    if t is Cell:
        return type_name(v.v)
    return getattr(v, "rhai_type_name", t.__name__)


def fmt_float(x: float) -> str:
    """Rhai's display of a float: ``1.0``, ``0.25``, ``1e20`` outside 1e-13..1e13."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    ax = abs(x)
    if ax == 0:
        return "0.0"
    if ax > 1e13 or ax < 1e-13:
        return _exp_form(x)
    return _positional(x)


def _positional(x: float) -> str:
    text = repr(x)
    if "e" in text:
        text = format(Decimal(text), "f")
    if "." not in text:
        text += ".0"
    return text


def _exp_form(x: float) -> str:
    """Rust's ``{:e}``: shortest digits, ``1e20``, ``1.5e-7``."""
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    shown = "".join(map(str, digits)).rstrip("0") or "0"
    power = exp + len(digits) - 1
    mantissa = shown[0] + ("." + shown[1:] if len(shown) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{power}"


def fmt_float_debug(x: float) -> str:
    """Rust's ``{:?}`` of a float (inside arrays, maps and ``debug``)."""
    if math.isnan(x) or math.isinf(x):
        return fmt_float(x)
    ax = abs(x)
    if ax == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-5 <= ax < 1e16:
        return _positional(x)
    return _exp_form(x)


def to_string(v: Any) -> str:
    """What ``print`` and string interpolation show."""
    t = type(v)
    if t is str or t is Char:
        return str(v)
    if t is int:
        return str(v)
    if t is float:
        return fmt_float(v)
    if t is bool:
        return "true" if v else "false"
    if v is None:
        return ""
    if t is FnPtr:
        return f"Fn({v.name})"
    return to_debug(v)


def _debug_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch < " ":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def to_debug(v: Any) -> str:
    """What ``debug`` shows: strings quoted, containers with their contents."""
    t = type(v)
    if t is str:
        return _debug_str(v)
    if t is Char:
        return "'\\''" if v == "'" else f"'{v}'"
    if v is None:
        return "()"
    if t is list:
        return "[" + ", ".join(to_debug(x) for x in v) + "]"
    if t is dict:
        # Rhai's maps are ordered by key.
        return "#{" + ", ".join(f"{_debug_str(k)}: {to_debug(v[k])}" for k in sorted(v)) + "}"
    if t is bytearray:
        return "[" + "".join(f"{b:02x}" for b in v) + "]"
    if t is FnPtr:
        fields = [_debug_str(v.name), *(to_debug(x) for x in v.curry)]
        return f"Fn({', '.join(fields)})"
    if t is Range:
        start = "" if v.start is None else str(v.start)
        end = "" if v.end is None else str(v.end)
        return f"{start}{'..=' if v.inclusive else '..'}{end}"
    if t is Timestamp:
        return "<timestamp>"
    if t is Cell:
        return to_debug(v.v)
    if t is float:
        return fmt_float_debug(v)
    return to_string(v) if t in (int, bool) else f"<{type_name(v)}>"


class _CopyMeter(threading.local):
    """The run on this thread: copying containers costs operations (one per element)."""

    rt: Any = None


COPY_METER = _CopyMeter()


def own(v: Any) -> Any:
    """A copy that shares nothing mutable with ``v`` (Rhai values are copied on assignment).

    Each element copied counts as an operation of the run on this thread, so a script
    cannot spend unbounded time (or memory) duplicating nested containers.
    """
    t = type(v)
    if t is list or t is dict or t is bytearray:
        rt = COPY_METER.rt
        if rt is not None:
            rt.ops += len(v)
            if rt.ops > rt.max_ops:
                rt.tick()
    if t is list:
        return [own(x) if type(x) in _MUTABLE else x for x in v]
    if t is dict:
        return {k: own(x) if type(x) in _MUTABLE else x for k, x in v.items()}
    if t is bytearray:
        return bytearray(v)
    return v


_MUTABLE = frozenset([list, dict, bytearray])
MUTABLE = _MUTABLE


def values_equal(a: Any, b: Any) -> bool:
    """Rhai ``==``: numbers across int/float, strings with chars, containers deeply."""
    ta, tb = type(a), type(b)
    if ta is tb or (ta in _NUM and tb in _NUM) or (ta in _STR and tb in _STR):
        if ta is list:
            return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
        return bool(a == b)
    return False


_NUM = frozenset([int, float])
_STR = frozenset([str, Char])
