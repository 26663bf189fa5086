"""Indexing (``a[i]``) and properties (``a.b``) of Rhai values, reading and writing."""

from __future__ import annotations

from typing import Any

from core.rhai.errors import RhaiRuntimeError, runtime
from core.rhai.ops import wrap64
from core.rhai.values import Char, Range, own, type_name

GETTERS = frozenset(
    [
        "bits",
        "bytes",
        "ceiling",
        "chars",
        "elapsed",
        "end",
        "floor",
        "fraction",
        "int",
        "is_anonymous",
        "is_empty",
        "is_even",
        "is_exclusive",
        "is_finite",
        "is_inclusive",
        "is_infinite",
        "is_nan",
        "is_odd",
        "is_zero",
        "len",
        "name",
        "round",
        "start",
        "tag",
    ]
)


def _bounds(kind: str, what: str, i: int, n: int) -> RhaiRuntimeError:
    return runtime(kind, f"{what} index {i} out of bounds: only {n} elements")


def _norm(i: int, n: int, kind: str, what: str) -> int:
    j = i + n if i < 0 else i
    if not 0 <= j < n:
        raise _bounds(kind, what, i, n)
    return j


def bit_range(start: int, bits: int) -> tuple[int, int]:
    """A (start, count) bit field of an i64, checked; a negative start counts from bit 64."""
    if start < 0:
        start += 64
    if not 0 <= start < 64:
        raise runtime("ErrorBitFieldBounds", f"Bit-field index {start} out of bounds: only 64 bits")
    bits = max(0, min(bits, 64 - start))
    return start, bits


def get_bits(x: int, start: int, bits: int) -> int:
    """``bits`` bits of ``x`` from ``start``."""
    if bits <= 0:
        return 0
    if start >= 64 or start + bits > 64:
        raise runtime("ErrorBitFieldBounds", f"Bit-field {start}+{bits} out of bounds")
    start, bits = bit_range(start, bits)
    return ((x & ((1 << 64) - 1)) >> start) & ((1 << bits) - 1)


def set_bits(x: int, start: int, bits: int, value: int) -> int:
    """``x`` with ``bits`` bits from ``start`` replaced by ``value``."""
    if bits <= 0:
        return x
    start, bits = bit_range(start, bits)
    mask = ((1 << bits) - 1) << start
    return wrap64((x & ~mask) | ((value << start) & mask))


def range_bits(x_range: Range) -> tuple[int, int]:
    """(start, count) of a bit range."""
    start = x_range.start or 0
    end = 64 if x_range.end is None else x_range.end + (1 if x_range.inclusive else 0)
    if end > 64 or start < 0 or start > 64 or end < 0:
        raise runtime("ErrorBitFieldBounds", f"Bit-field range out of bounds: {start}..{end}")
    return start, max(end - start, 0)


def index_get(c: Any, i: Any) -> Any:
    """``c[i]``."""
    tc, ti = type(c), type(i)
    if tc is list:
        if ti is not int:
            raise runtime(
                "ErrorIndexingType", f"Array index must be an integer, not {type_name(i)}"
            )
        return c[_norm(i, len(c), "ErrorArrayBounds", "Array")]
    if tc is dict:
        if ti is not str and ti is not Char:
            raise runtime("ErrorIndexingType", f"Map index must be a string, not {type_name(i)}")
        return c.get(i)
    if tc is str or tc is Char:
        if ti is int:
            return Char(c[_norm(i, len(c), "ErrorStringBounds", "String")])
        if ti is Range:
            a, b = i.bounds(len(c))
            return c[a:b] if b > a else ""
    elif tc is int:
        if ti is int:
            if not -64 <= i < 64:
                raise runtime("ErrorBitFieldBounds", f"Bit-field index {i} out of bounds")
            return bool((c >> (i % 64)) & 1)
        if ti is Range:
            return get_bits(c, *range_bits(i))
    elif tc is bytearray and ti is int:
        return c[_norm(i, len(c), "ErrorArrayBounds", "Blob")]
    if tc is type(None):
        raise runtime("ErrorIndexingType", "Cannot index ()")
    raise runtime(
        "ErrorIndexingType", f"Indexing {type_name(c)} with {type_name(i)} is not supported"
    )


def index_set(c: Any, i: Any, v: Any) -> Any:
    """``c[i] = v``; returns the container (a new one for strings and integers)."""
    tc, ti = type(c), type(i)
    if tc is list and ti is int:
        c[_norm(i, len(c), "ErrorArrayBounds", "Array")] = own(v)
        return c
    if tc is dict and (ti is str or ti is Char):
        c[str(i)] = own(v)
        return c
    if tc is bytearray and ti is int:
        if type(v) is not int:
            raise runtime(
                "ErrorMismatchDataType", f"Blob elements are integers, not {type_name(v)}"
            )
        c[_norm(i, len(c), "ErrorArrayBounds", "Blob")] = v & 0xFF
        return c
    if tc is str or tc is Char:
        if ti is int:
            j = _norm(i, len(c), "ErrorStringBounds", "String")
            if type(v) is not Char and not (type(v) is str and len(v) == 1):
                raise runtime("ErrorMismatchDataType", f"Expecting a char, got {type_name(v)}")
            return c[:j] + v + c[j + 1 :]
        if ti is Range:
            if type(v) not in (str, Char):
                raise runtime("ErrorMismatchDataType", f"Expecting a string, got {type_name(v)}")
            a, b = i.bounds(len(c))
            return c[:a] + v + c[max(a, b) :]
    if tc is int:
        if ti is int:
            if not -64 <= i < 64:
                raise runtime("ErrorBitFieldBounds", f"Bit-field index {i} out of bounds")
            if type(v) is not bool:
                raise runtime("ErrorMismatchDataType", f"Expecting a bool, got {type_name(v)}")
            return set_bits(c, i % 64, 1, int(v))
        if ti is Range:
            if type(v) is not int:
                raise runtime("ErrorMismatchDataType", f"Expecting an integer, got {type_name(v)}")
            return set_bits(c, *range_bits(i), v)
    raise runtime(
        "ErrorIndexingType", f"Indexing {type_name(c)} with {type_name(i)} is not supported"
    )


def prop_set(c: Any, name: str, v: Any) -> Any:
    """``c.name = v`` (object maps only)."""
    if type(c) is dict:
        c[name] = own(v)
        return c
    raise runtime("ErrorDotExpr", f"Cannot set property '{name}' of {type_name(c)}")
