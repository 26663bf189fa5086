"""Core functions: conversions, parsing numbers, ranges, timestamps, function pointers."""

from __future__ import annotations

import math
import time
from typing import Any

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


@fn("name", 1)
def fn_name(fp: Any) -> str:
    if type(fp) is not FnPtr:
        raise NoMatch
    return fp.name


@fn("is_anonymous", 1)
def is_anonymous(fp: Any) -> bool:
    if type(fp) is not FnPtr:
        raise NoMatch
    return fp.is_anonymous


@fn("tag", 1)
def tag(v: Any) -> int:
    return 0


@fn("start", 1)
def range_start(r: Any) -> Any:
    if type(r) is not Range:
        raise NoMatch
    return r.start if r.start is not None else 0


@fn("end", 1)
def range_end(r: Any) -> Any:
    if type(r) is not Range:
        raise NoMatch
    return r.end if r.end is not None else INT_MAX


@fn("is_inclusive", 1)
def is_inclusive(r: Any) -> bool:
    if type(r) is not Range:
        raise NoMatch
    return r.inclusive


@fn("is_exclusive", 1)
def is_exclusive(r: Any) -> bool:
    if type(r) is not Range:
        raise NoMatch
    return not r.inclusive


@fn("throw", 1)
def throw_fn(v: Any) -> None:
    from core.rhai.errors import ErrorThrown

    raise ErrorThrown(v, to_string(v))
