"""Core functions: conversions, parsing numbers, ranges, timestamps, function pointers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from core.rhai.compile_flow import RIter
from core.rhai.errors import arithmetic
from core.rhai.runtime import NoMatch, Runtime
from core.rhai.stdlib import Lib
from core.rhai.values import (
    INT_MAX,
    INT_MIN,
    Char,
    FnPtr,
    Range,
    Timestamp,
    to_debug,
    to_string,
)

lib = Lib()
fn = lib.fn
T = TypeVar("T")


@fn("to_string", 1)
@fn("print", 1)
def _to_string(x: Any) -> str:
    return to_string(x)


@fn("to_debug", 1)
@fn("debug", 1)
def _to_debug(x: Any) -> str:
    return to_debug(x)


@fn("to_int", 1)
def to_int(x: Any) -> int:
    t = type(x)
    if t is int:
        return int(x)
    if t is float:
        if math.isnan(x) or math.isinf(x) or not INT_MIN <= math.trunc(x) <= INT_MAX:
            raise arithmetic(f"Integer overflow: to_int({to_string(x)})")
        truncated: int = math.trunc(x)
        return truncated
    if t is Char:
        return ord(x)
    if t is bool:
        return int(x)
    raise NoMatch


@fn("to_float", 1)
def to_float(x: Any) -> float:
    if type(x) in (int, float):
        return float(x)
    raise NoMatch


@fn("to_char", 1)
def to_char(x: Any) -> Char:
    if type(x) is int and 0 <= x <= 0x10FFFF:
        return Char(chr(x))
    raise NoMatch


@fn("parse_int", 1, 2)
def parse_int(s: Any, radix: Any = 10) -> int:
    if type(s) is not str or type(radix) is not int:
        raise NoMatch
    if not 2 <= radix <= 36:
        raise arithmetic(f"Invalid radix: '{radix}'")
    text = s.strip()
    try:
        if not text or "_" in text:
            raise ValueError
        value = int(text, radix)
    except ValueError:
        raise arithmetic(f"Error parsing integer number '{s}': invalid digit") from None
    if not INT_MIN <= value <= INT_MAX:
        raise arithmetic(f"Error parsing integer number '{s}': number too large")
    return value


@fn("parse_float", 1)
def parse_float(s: Any) -> float:
    if type(s) is not str:
        raise NoMatch
    text = s.strip()
    try:
        if "_" in text or text.lower() in ("nan", "inf", "-inf", "+inf", "infinity"):
            raise ValueError
        return float(text)
    except ValueError:
        raise arithmetic(
            f"Error parsing floating-point number '{s}': invalid float literal"
        ) from None


@fn("timestamp", 0)
def timestamp() -> Timestamp:
    return Timestamp()


@fn("elapsed", 1)
def elapsed(ts: Any) -> float:
    if type(ts) is not Timestamp:
        raise NoMatch
    return ts.elapsed


@fn("sleep", 1, ctx=True)
def sleep(rt: Runtime, seconds: Any) -> None:
    if type(seconds) not in (int, float):
        raise NoMatch
    end = time.monotonic() + max(float(seconds), 0.0)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        if rt.stopped:
            rt.tick()
        time.sleep(min(left, 0.05))


def _step_range(start: Any, end: Any, step: Any) -> RIter:
    nums = (int, float)
    if type(start) not in nums or type(end) not in nums or type(step) not in nums:
        raise NoMatch
    if step == 0:
        raise arithmetic("Step value cannot be zero")
    if type(start) is int and type(end) is int and type(step) is int:
        if (end - start) * step < 0:
            return RIter(range(0))
        return RIter(range(start, end, step))

    def floats() -> Any:
        x = float(start)
        while (x < end) if step > 0 else (x > end):
            yield x
            x += step

    return RIter(floats())


@fn("range", 2, 3)
def range_fn(a: Any, b: Any, step: Any = None) -> RIter:
    if type(a) is Range and step is None:
        r = a.py_range()
        return _step_range(r.start, r.stop, b)
    if step is None:
        if type(a) is int and type(b) is int:
            return RIter(range(a, b))
        raise NoMatch
    return _step_range(a, b, step)


def _getter(name: str, kind: type[T], get: Callable[[T], Any]) -> None:
    """Register ``name(x)``: ``get(x)`` for an ``x`` of exactly type ``kind``, else no match."""

    def read(v: Any) -> Any:
        if type(v) is not kind:
            raise NoMatch
        return get(v)

    fn(name, 1)(read)


_getter("name", FnPtr, lambda fp: fp.name)
_getter("is_anonymous", FnPtr, lambda fp: fp.is_anonymous)
_getter("start", Range, lambda r: r.start if r.start is not None else 0)
_getter("end", Range, lambda r: r.end if r.end is not None else INT_MAX)
_getter("is_inclusive", Range, lambda r: r.inclusive)
_getter("is_exclusive", Range, lambda r: not r.inclusive)


@fn("tag", 1)
def tag(v: Any) -> int:
    return 0


@fn("throw", 1)
def throw_fn(v: Any) -> None:
    from core.rhai.errors import ErrorThrown

    raise ErrorThrown(v, to_string(v))
