"""Rhai operators on Python values: checked i64 arithmetic, mixed numbers, strings, containers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from core.rhai.errors import RhaiRuntimeError, arithmetic, runtime
from core.rhai.values import (
    INT_MAX,
    INT_MIN,
    Char,
    Range,
    Timestamp,
    own,
    to_string,
    type_name,
    values_equal,
)

BinOp = Callable[[Any, Any], Any]
_NUM = (int, float)
_STR = (str, Char)


def not_found(op: str, *args: Any) -> RhaiRuntimeError:
    """ErrorFunctionNotFound for an operator or function with these argument types."""
    sig = ", ".join(type_name(a) for a in args)
    return runtime("ErrorFunctionNotFound", f"Function not found: {op} ({sig})")


def overflow(op: str, a: Any, b: Any) -> RhaiRuntimeError:
    """ErrorArithmetic for an i64 overflow."""
    return arithmetic(f"Arithmetic overflow: {to_string(a)} {op} {to_string(b)}")


def checked(r: int, op: str, a: Any, b: Any) -> int:
    """``r`` when it fits in an i64."""
    if INT_MIN <= r <= INT_MAX:
        return r
    raise overflow(op, a, b)


def int_div(a: int, b: int) -> int:
    """i64 division truncating toward zero."""
    if b == 0:
        raise arithmetic(f"Division by zero: {a} / {b}")
    q = abs(a) // abs(b)
    q = -q if (a < 0) != (b < 0) else q
    return checked(q, "/", a, b)


def int_rem(a: int, b: int) -> int:
    """i64 remainder with the sign of the dividend."""
    if b == 0:
        raise arithmetic(f"Division by zero: {a} % {b}")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def int_pow(a: int, b: int) -> int:
    """i64 power; a negative exponent is an error."""
    if b < 0:
        raise arithmetic(f"Integer raised to a negative power: {a} ** {b}")
    if b > 64 and abs(a) > 1:
        raise overflow("**", a, b)
    return checked(a**b, "**", a, b)


def wrap64(v: int) -> int:
    """Wrap to a signed 64-bit value."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def shl(a: int, b: int) -> int:
    """``<<``; a negative count shifts right."""
    if b < 0:
        return shr(a, -b)
    if b >= 64:
        raise arithmetic(f"Left-shift by too many bits: {a} << {b}")
    return wrap64(a << b)


def shr(a: int, b: int) -> int:
    """``>>`` (arithmetic); a negative count shifts left."""
    if b < 0:
        return shl(a, -b)
    if b >= 64:
        raise arithmetic(f"Right-shift by too many bits: {a} >> {b}")
    return a >> b


def fpow(a: float, b: float) -> float:
    """Float power that gives NaN/inf instead of raising."""
    try:
        return math.pow(a, b)
    except ValueError:
        return math.nan
    except OverflowError:
        return math.inf if a > 0 or (float(b).is_integer() and int(b) % 2 == 0) else -math.inf


def fmod(a: float, b: float) -> float:
    """Float remainder with the sign of the dividend (NaN for a zero divisor)."""
    if b == 0:
        return math.nan
    return math.fmod(a, b)


def fdiv(a: float, b: float) -> float:
    """Float division: a zero divisor gives inf or NaN."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def add(a: Any, b: Any) -> Any:
    """``+``."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return checked(a + b, "+", a, b)
    if ta in _NUM and tb in _NUM and ta is not bool and tb is not bool:
        return a + b
    if ta in _STR or tb in _STR:
        if ta in _STR and tb in _STR:
            return str(a) + str(b)
        if ta is bytearray or tb is bytearray:
            raise not_found("+", a, b)
        return to_string(a) + to_string(b)
    if ta is list and tb is list:
        return own(a) + own(b)
    if ta is dict and tb is dict:
        r = own(a)
        r.update(own(b))
        return r
    if ta is bytearray and tb is bytearray:
        return a + b
    if ta is Timestamp and tb in _NUM and tb is not bool:
        return Timestamp(a.t + b)
    raise not_found("+", a, b)


def sub(a: Any, b: Any) -> Any:
    """``-``."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return checked(a - b, "-", a, b)
    if ta in _NUM and tb in _NUM and ta is not bool and tb is not bool:
        return a - b
    if ta is str and tb in _STR:
        return a.replace(b, "") if b else a
    if ta is Timestamp and tb is Timestamp:
        return a.t - b.t
    if ta is Timestamp and tb in _NUM and tb is not bool:
        return Timestamp(a.t - b)
    raise not_found("-", a, b)


def _numeric(op: str, ints: BinOp, floats: BinOp) -> BinOp:
    def run(a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta is int and tb is int:
            return ints(a, b)
        if ta in _NUM and tb in _NUM and ta is not bool and tb is not bool:
            return floats(float(a), float(b))
        raise not_found(op, a, b)

    return run


def _mul_int(a: int, b: int) -> int:
    return checked(a * b, "*", a, b)


mul = _numeric("*", _mul_int, lambda a, b: a * b)
div = _numeric("/", int_div, fdiv)
rem = _numeric("%", int_rem, fmod)


def power(a: Any, b: Any) -> Any:
    """``**``: float ** int uses an integer power."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return int_pow(a, b)
    if ta is float and tb is int:
        try:
            return float(a**b)
        except (OverflowError, ZeroDivisionError):
            return fpow(a, float(b))
    if ta in _NUM and tb in _NUM and ta is not bool and tb is not bool:
        return fpow(float(a), float(b))
    raise not_found("**", a, b)


def _ints_or_bools(op: str, ints: BinOp, bools: BinOp | None) -> BinOp:
    def run(a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta is int and tb is int:
            return ints(a, b)
        if bools is not None and ta is bool and tb is bool:
            return bools(a, b)
        raise not_found(op, a, b)

    return run


bit_and = _ints_or_bools("&", lambda a, b: a & b, lambda a, b: a and b)
bit_or = _ints_or_bools("|", lambda a, b: a | b, lambda a, b: a or b)
bit_xor = _ints_or_bools("^", lambda a, b: a ^ b, lambda a, b: a != b)
op_shl = _ints_or_bools("<<", shl, None)
op_shr = _ints_or_bools(">>", shr, None)


def eq(a: Any, b: Any) -> bool:
    """``==``."""
    if type(a) is int and type(b) is int:
        return bool(a == b)
    return values_equal(a, b)


def ne(a: Any, b: Any) -> bool:
    """``!=``."""
    if type(a) is int and type(b) is int:
        return bool(a != b)
    return not values_equal(a, b)


def _comparable(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb:
        return ta in (int, float, str, Char, bool, Timestamp) or a is None
    return (ta in _NUM and tb in _NUM and ta is not bool and tb is not bool) or (
        ta in _STR and tb in _STR
    )


def _compare(op: str, test: Callable[[Any, Any], bool]) -> BinOp:
    def run(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return test(a, b)
        if not _comparable(a, b):
            return False
        if a is None:
            return op in ("<=", ">=")
        if type(a) is Timestamp:
            return test(a.t, b.t)
        return test(a, b)

    return run


lt = _compare("<", lambda a, b: a < b)
le = _compare("<=", lambda a, b: a <= b)
gt = _compare(">", lambda a, b: a > b)
ge = _compare(">=", lambda a, b: a >= b)


def contains(a: Any, b: Any) -> bool:
    """``a in b``."""
    tb = type(b)
    if tb is list:
        return any(values_equal(a, x) for x in b)
    if tb is dict:
        if type(a) not in _STR:
            raise not_found("in", a, b)
        return str(a) in b
    if tb in _STR:
        if type(a) not in _STR:
            raise not_found("in", a, b)
        return str(a) in b
    if tb is Range:
        return type(a) is int and a in b.py_range()
    if tb is bytearray:
        return type(a) is int and a in b
    raise not_found("in", a, b)


def make_range(a: Any, b: Any, inclusive: bool) -> Range:
    """``a..b`` / ``a..=b`` (open ends are None)."""
    for v in (a, b):
        if v is not None and type(v) is not int:
            raise not_found("..=" if inclusive else "..", a, b)
    return Range(a, b, inclusive)


BINARY: dict[str, BinOp] = {
    "+": add, "-": sub, "*": mul, "/": div, "%": rem, "**": power,
    "<<": op_shl, ">>": op_shr, "&": bit_and, "|": bit_or, "^": bit_xor,
    "==": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge,
    "in": contains, "!in": lambda a, b: not contains(a, b),
    "..": lambda a, b: make_range(a, b, False), "..=": lambda a, b: make_range(a, b, True),
}  # fmt: skip


def negate(v: Any) -> Any:
    """Unary ``-``."""
    t = type(v)
    if t is int:
        if v == INT_MIN:
            raise arithmetic(f"Arithmetic overflow: -{v}")
        return -v
    if t is float:
        return -v
    raise not_found("-", v)


def plus(v: Any) -> Any:
    """Unary ``+``."""
    if type(v) in _NUM and type(v) is not bool:
        return v
    raise not_found("+", v)


def logical_not(v: Any) -> bool:
    """``!``."""
    if type(v) is bool:
        return not v
    raise not_found("!", v)


def add_assign(a: Any, b: Any) -> Any:
    """``a += b``: arrays, maps and blobs grow in place."""
    ta = type(a)
    if ta is int and type(b) is int:
        return checked(a + b, "+", a, b)
    if ta is list:
        if type(b) is list:
            a.extend(own(b))
        else:
            a.append(own(b))
        return a
    if ta is dict and type(b) is dict:
        a.update(own(b))
        return a
    if ta is bytearray:
        tb = type(b)
        if tb is int:
            a.append(b & 0xFF)
        elif tb is bytearray:
            a.extend(b)
        elif tb in _STR:
            a.extend(str(b).encode())
        else:
            raise not_found("+=", a, b)
        return a
    return add(a, b)


COMPOUND: dict[str, BinOp] = dict(BINARY, **{"+": add_assign})
