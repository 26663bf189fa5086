"""String and char functions; those that change a string take it as a `Ref`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.rhai.compile_flow import RIter
from core.rhai.runtime import NoMatch, Ref
from core.rhai.stdlib import Lib
from core.rhai.values import Char, Range, to_string

lib = Lib()
fn = lib.fn
_STR = (str, Char)


def _s(x: Any) -> str:
    if type(x) is str or type(x) is Char:
        return str(x)
    raise NoMatch


def _i(x: Any) -> int:
    if type(x) is not int:
        raise NoMatch
    return int(x)


def offset_len(n: int, start: int, length: int) -> tuple[int, int]:
    """Rhai's (start, len) over ``n`` items: negative start counts from the end, clamped."""
    if start < 0:
        start = max(start + n, 0)
    if start >= n:
        return n, 0
    length = max(0, min(length, n - start))
    return start, length


def span(n: int, start: Any, length: Any = None) -> tuple[int, int]:
    """(start, end) of ``start, len`` or a range, clamped into ``0..n``."""
    if type(start) is Range and length is None:
        a, b = start.bounds(n)
        return a, max(a, b)
    s = _i(start)
    ln = n if length is None else _i(length)
    s, ln = offset_len(n, s, ln)
    return s, s + ln


@fn("len", 1)
def length(x: Any) -> int:
    if type(x) in _STR or type(x) in (list, dict, bytearray):
        return len(x)
    if type(x) is Range:
        return len(x.py_range())
    raise NoMatch


@fn("is_empty", 1)
def is_empty(x: Any) -> bool:
    return bool(length(x) == 0)


@fn("bytes", 1)
def nbytes(s: Any) -> int:
    return len(_s(s).encode())


def _recased(s: Any, change: Callable[[str], str]) -> Any:
    """A string in the other case; a char whose other case is not one char (ß) stays."""
    if type(s) is Char:
        changed = change(s)
        return Char(changed) if len(changed) == 1 else Char(s)
    return change(_s(s))


@fn("to_upper", 1)
def to_upper(s: Any) -> Any:
    return _recased(s, str.upper)


@fn("to_lower", 1)
def to_lower(s: Any) -> Any:
    return _recased(s, str.lower)


@fn("make_upper", 1, mut=True)
def make_upper(r: Ref) -> None:
    r.v = to_upper(r.v)


@fn("make_lower", 1, mut=True)
def make_lower(r: Ref) -> None:
    r.v = to_lower(r.v)


@fn("trim", 1, mut=True)
def trim(r: Ref) -> None:
    r.v = _s(r.v).strip()


@fn("contains", 2)
def contains(s: Any, x: Any) -> bool:
    if type(s) in _STR:
        return _s(x) in s
    raise NoMatch


@fn("starts_with", 2)
def starts_with(s: Any, x: Any) -> bool:
    return _s(s).startswith(_s(x))


@fn("ends_with", 2)
def ends_with(s: Any, x: Any) -> bool:
    return _s(s).endswith(_s(x))


def str_index_of(s: Any, find: Any, start: Any = 0) -> int:
    """Character index of ``find`` in ``s`` from ``start``, or -1."""
    text, sub = _s(s), _s(find)
    st, _ = offset_len(len(text), _i(start), 0)
    if _i(start) >= len(text) and text:
        return -1
    return text.find(sub, st)


@fn("sub_string", 2, 3)
def sub_string(s: Any, start: Any, length: Any = None) -> str:
    text = _s(s)
    a, b = span(len(text), start, length)
    return text[a:b]


@fn("crop", 2, 3, mut=True)
def crop(r: Ref, start: Any, length: Any = None) -> None:
    if type(r.v) not in _STR:
        raise NoMatch
    r.v = sub_string(r.v, start, length)


@fn("split", 1)
def split_ws(s: Any) -> list[Any]:
    return list(_s(s).split())


def str_split(text: str, delim: Any, segments: Any = None) -> list[Any]:
    """``split(s, delim[, n])`` or ``split(s, index)``."""
    if type(delim) is int and segments is None:
        a, _ = offset_len(len(text), delim, 0)
        return [text[:a], text[a:]]
    sep = _s(delim)
    n = -1 if segments is None else _i(segments)
    if n == 0 or n == 1:
        return [text]
    parts = _split_all(text, sep)
    if n > 0 and len(parts) > n:
        parts = [*parts[: n - 1], sep.join(parts[n - 1 :])]
    return parts


def _split_all(text: str, sep: str) -> list[Any]:
    """Rust's ``str::split``: an empty separator splits between every character."""
    if not sep:
        return ["", *text, ""]
    return list(text.split(sep))


@fn("split_rev", 2, 3)
def split_rev(s: Any, delim: Any, segments: Any = None) -> list[Any]:
    text, sep = _s(s), _s(delim)
    n = -1 if segments is None else _i(segments)
    if n == 0 or n == 1:
        return [text]
    parts = list(reversed(_split_all(text, sep)))
    if n > 0 and len(parts) > n:
        parts = [*parts[: n - 1], sep.join(reversed(parts[n - 1 :]))]
    return parts


@fn("chars", 1, 2, 3)
def chars(s: Any, start: Any = 0, length: Any = None) -> RIter:
    text = _s(s)
    a, b = span(len(text), start, length)
    return RIter(Char(ch) for ch in text[a:b])


@fn("to_chars", 1)
def to_chars(s: Any) -> list[Any]:
    return [Char(ch) for ch in _s(s)]


@fn("to_blob", 1)
def to_blob(s: Any) -> bytearray:
    return bytearray(_s(s).encode())


def str_truncate(r: Ref, n: int) -> None:
    """Keep the first ``n`` characters."""
    r.v = r.v[: max(n, 0)]


def str_pad(r: Ref, n: int, pad: Any) -> None:
    """Pad to ``n`` characters with a char or string."""
    fill = _s(pad)
    text = r.v
    if not fill:
        return
    while len(text) < n:
        text += fill
    r.v = text[: max(n, len(r.v))]


def str_remove(r: Ref, what: Any) -> None:
    """Remove every occurrence of a char or string."""
    sub = _s(what)
    r.v = r.v.replace(sub, "") if sub else r.v


@fn("replace", 3, mut=True)
def replace(r: Ref, find: Any, sub: Any) -> None:
    text = _s(r.v)
    old = _s(find)
    r.v = text.replace(old, _s(sub)) if old else text


def str_pop(r: Ref, n: Any = None) -> Any:
    """Remove and return the last char (or the last ``n`` as a string)."""
    text = r.v
    if n is None:
        if not text:
            return None
        r.v = text[:-1]
        return Char(text[-1])
    k = max(0, min(_i(n), len(text)))
    if k == 0:
        return ""
    r.v = text[:-k]
    return text[-k:]


def str_append(r: Ref, item: Any) -> None:
    """Append the text of any value."""
    if type(item) is bytearray:
        r.v = r.v + item.decode("utf-8", "replace")
    else:
        r.v = r.v + to_string(item)


def str_get(s: str, i: int) -> Any:
    """The char at ``i`` (negative counts from the end), or ()."""
    if i < 0:
        i += len(s)
    return Char(s[i]) if 0 <= i < len(s) else None


def str_set(r: Ref, i: int, ch: Any) -> None:
    """Replace the char at ``i``; out of bounds does nothing."""
    s = r.v
    if i < 0:
        i += len(s)
    if 0 <= i < len(s) and type(ch) is Char:
        r.v = s[:i] + ch + s[i + 1 :]
