"""Blob functions: blob(), parse/write of little- and big-endian numbers, ASCII and UTF-8."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from core.rhai.errors import ErrorLimit
from core.rhai.runtime import NoMatch, Runtime
from core.rhai.stdlib import Lib
from core.rhai.stdlib.strings import span
from core.rhai.values import Char, Range

lib = Lib()
fn = lib.fn


def _blob(b: Any) -> bytearray:
    if type(b) is not bytearray:
        raise NoMatch
    return b


def _i(x: Any) -> int:
    if type(x) is not int:
        raise NoMatch
    return int(x)


@fn("blob", 0, 1, 2, ctx=True)
def blob(rt: Runtime, n: Any = 0, value: Any = 0) -> bytearray:
    k, v = max(_i(n), 0), _i(value)
    limit = rt.limits.max_array_size
    if limit and k > limit:
        raise ErrorLimit(
            "ErrorDataTooLarge", "max_array_size", f"Length of blob would be {k}, more than {limit}"
        )
    return bytearray([v & 0xFF]) * k


@fn("to_array", 1)
def to_array(b: Any) -> list[Any]:
    return list(_blob(b))


@fn("as_string", 1)
def as_string(b: Any) -> str:
    return _blob(b).decode("utf-8", "replace")


def _field(b: bytearray, start: Any, length: Any) -> tuple[int, int]:
    if type(start) is Range and length is None:
        return span(len(b), start)
    return span(len(b), start, min(_i(length), 8) if length is not None else None)


def _parser(fmt: str) -> Callable[..., Any]:
    """``parse_xx(blob, start[, length])`` that unpacks the field as ``fmt``.

    The field's bytes (8 at most) are zero-padded at their high end to 8 first.
    """
    little = fmt[0] == "<"

    def parse(b: Any, start: Any, length: Any = None) -> Any:
        data = _blob(b)
        s, e = _field(data, start, length)
        raw = bytes(data[s : min(e, s + 8)])
        pad = bytes(8 - len(raw))
        return struct.unpack(fmt, raw + pad if little else pad + raw)[0]

    return parse


fn("parse_le_int", 2, 3)(_parser("<q"))
fn("parse_be_int", 2, 3)(_parser(">q"))
fn("parse_le_float", 2, 3)(_parser("<d"))
fn("parse_be_float", 2, 3)(_parser(">d"))


def _write(little: bool, b: Any, start: Any, length: Any, value: Any = None) -> None:
    data = _blob(b)
    if value is None:
        start, length, value = start, None, length
    s, e = _field(data, start, length)
    e = min(e, s + 8)
    if type(value) is int:
        raw = (value & ((1 << 64) - 1)).to_bytes(8, "little")
    elif type(value) is float:
        raw = struct.pack("<d", value)
    else:
        raise NoMatch
    if not little:
        raw = raw[::-1]
        raw = raw[8 - (e - s) :] if e > s else b""
    data[s:e] = raw[: e - s]


fn("write_le", 3, 4)(functools.partial(_write, True))
fn("write_be", 3, 4)(functools.partial(_write, False))


def _write_text(ascii_only: bool, b: Any, start: Any, length: Any, text: Any = None) -> None:
    data = _blob(b)
    if text is None:
        start, length, text = start, None, length
    if type(text) not in (str, Char):
        raise NoMatch
    s, e = span(len(data), start, length)
    raw = str(text).encode("ascii", "ignore") if ascii_only else str(text).encode()
    raw = raw[: e - s]
    data[s : s + len(raw)] = raw


fn("write_ascii", 3, 4)(functools.partial(_write_text, True))
fn("write_utf8", 3, 4)(functools.partial(_write_text, False))
