"""Math functions: abs, sign, rounding, roots, logs, trigonometry, radix strings, bit fields."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from core.rhai.access import get_bits, range_bits, set_bits
from core.rhai.compile_flow import RIter
from core.rhai.errors import arithmetic, runtime
from core.rhai.runtime import NoMatch, Ref
from core.rhai.stdlib import Lib
from core.rhai.values import INT_MIN, Range

lib = Lib()
fn = lib.fn


def _num(x: Any) -> float:
    if type(x) is float or type(x) is int:
        return float(x)
    raise NoMatch


@fn("abs", 1)
def abs_(x: Any) -> Any:
    if type(x) is int:
        if x == INT_MIN:
            raise arithmetic(f"Integer overflow: abs({x})")
        return abs(x)
    if type(x) is float:
        return abs(x)
    raise NoMatch


@fn("sign", 1)
def sign(x: Any) -> int:
    if type(x) is int or type(x) is float:
        if type(x) is float and math.isnan(x):
            raise arithmetic("Cannot get the sign of NaN")
        return (x > 0) - (x < 0)
    raise NoMatch


def _float_fn(name: str, func: Callable[[float], Any]) -> None:
    def run(x: Any) -> float:
        v = _num(x)
        try:
            return float(func(v))
        except (ValueError, OverflowError):
            return math.nan

    lib.fn(name, 1)(run)


for _name, _func in {
    "sqrt": math.sqrt, "exp": math.exp, "ln": math.log, "sin": math.sin, "cos": math.cos,
    "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan,
    "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh, "asinh": math.asinh,
    "acosh": math.acosh, "atanh": math.atanh, "to_degrees": math.degrees,
    "to_radians": math.radians, "floor": math.floor, "ceiling": math.ceil,
}.items():  # fmt: skip
    _float_fn(_name, _func)


@fn("log", 1, 2)
def log(x: Any, base: Any = 10.0) -> float:
    try:
        return math.log(_num(x), _num(base))
    except (ValueError, ZeroDivisionError):
        return math.nan


@fn("round", 1)
def round_(x: Any) -> float:
    v = _num(x)
    if math.isnan(v) or math.isinf(v):
        return v
    return float(math.floor(abs(v) + 0.5)) * (1.0 if v >= 0 else -1.0)


@fn("int", 1)
def int_part(x: Any) -> float:
    v = _num(x)
    return float(math.trunc(v)) if math.isfinite(v) else v


@fn("fraction", 1)
def fraction(x: Any) -> float:
    v = _num(x)
    return v - math.trunc(v) if math.isfinite(v) else math.nan


@fn("hypot", 2)
def hypot(x: Any, y: Any) -> float:
    return math.hypot(_num(x), _num(y))


@fn("atan", 2)
def atan2(x: Any, y: Any) -> float:
    return math.atan2(_num(x), _num(y))


@fn("is_nan", 1)
def is_nan(x: Any) -> bool:
    return math.isnan(_num(x))


@fn("is_finite", 1)
def is_finite(x: Any) -> bool:
    return math.isfinite(_num(x))


@fn("is_infinite", 1)
def is_infinite(x: Any) -> bool:
    return math.isinf(_num(x))


@fn("is_zero", 1)
def is_zero(x: Any) -> bool:
    return _num(x) == 0


@fn("is_odd", 1)
def is_odd(x: Any) -> bool:
    if type(x) is not int:
        raise NoMatch
    return x % 2 == 1


@fn("is_even", 1)
def is_even(x: Any) -> bool:
    if type(x) is not int:
        raise NoMatch
    return x % 2 == 0


@fn("PI", 0)
def pi() -> float:
    return math.pi


@fn("E", 0)
def e() -> float:
    return math.e


@fn("max", 2)
def max_(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return max(a, b)
    return max(_num(a), _num(b))


@fn("min", 2)
def min_(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return min(a, b)
    return min(_num(a), _num(b))


def _radix(fmt: str) -> Callable[[Any], str]:
    def run(x: Any) -> str:
        if type(x) is not int:
            raise NoMatch
        return format(x & ((1 << 64) - 1), fmt)

    return run


lib.fn("to_hex", 1)(_radix("x"))
lib.fn("to_octal", 1)(_radix("o"))
lib.fn("to_binary", 1)(_radix("b"))


def _int(x: Any) -> int:
    if type(x) is not int:
        raise NoMatch
    return int(x)


@fn("get_bit", 2)
def get_bit(x: Any, bit: Any) -> bool:
    value, bit = _int(x), _int(bit)
    if bit < 0:
        bit += 64
    if not 0 <= bit < 64:
        raise runtime("ErrorBitFieldBounds", f"Bit-field index {bit} out of bounds")
    return bool((value >> bit) & 1)


@fn("set_bit", 3, mut=True)
def set_bit(r: Ref, bit: Any, on: Any) -> None:
    value, bit = _int(r.v), _int(bit)
    if type(on) is not bool:
        raise NoMatch
    if bit < 0:
        bit += 64
    if not 0 <= bit < 64:
        raise runtime("ErrorBitFieldBounds", f"Bit-field index {bit} out of bounds")
    r.v = set_bits(value, bit, 1, int(on))


@fn("get_bits", 2, 3)
def get_bits_fn(x: Any, start: Any, bits: Any = None) -> int:
    value = _int(x)
    if bits is None:
        if type(start) is not Range:
            raise NoMatch
        return get_bits(value, *range_bits(start))
    s, n = _int(start), _int(bits)
    if s < 0:
        s += 64
    return get_bits(value, s, min(n, 64 - s) if 0 <= s < 64 else n)


@fn("set_bits", 3, 4, mut=True)
def set_bits_fn(r: Ref, start: Any, bits: Any, new: Any = None) -> None:
    value = _int(r.v)
    if new is None:
        if type(start) is not Range:
            raise NoMatch
        r.v = set_bits(value, *range_bits(start), _int(bits))
        return
    r.v = set_bits(value, _int(start), _int(bits), _int(new))


@fn("bits", 1, 2, 3)
def bits(x: Any, start: Any = 0, count: Any = None) -> RIter:
    value = _int(x)
    if type(start) is Range:
        s, n = range_bits(start)
    else:
        s = _int(start)
        if s < 0:
            s += 64
        if not 0 <= s <= 64:
            raise runtime("ErrorBitFieldBounds", f"Bit-field index {s} out of bounds")
        n = 64 - s if count is None else max(0, min(_int(count), 64 - s))
    return RIter(bool((value >> i) & 1) for i in range(s, s + n))
