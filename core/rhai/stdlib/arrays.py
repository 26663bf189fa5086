"""Array functions (and the blob and string variants of shared names like pop or remove)."""

from __future__ import annotations

import functools
from typing import Any

from core.rhai.errors import ErrorLimit, runtime
from core.rhai.runtime import NoMatch, Ref, Runtime
from core.rhai.stdlib import Lib
from core.rhai.stdlib import strings as S
from core.rhai.values import Char, FnPtr, Range, own, type_name, values_equal

lib = Lib()
fn = lib.fn
_SEQ = (list, bytearray)


def _i(x: Any) -> int:
    if type(x) is not int:
        raise NoMatch
    return int(x)


def _seq(x: Any) -> Any:
    if type(x) is list or type(x) is bytearray:
        return x
    raise NoMatch


def _item(a: Any, v: Any) -> Any:
    """A value to store in ``a``: copied for arrays, a byte for blobs."""
    if type(a) is bytearray:
        if type(v) is not int:
            raise NoMatch
        return v & 0xFF
    return own(v)


def _check(rt: Runtime, a: Any) -> None:
    rt.check_size(a)


@fn("push", 2, mut=True, ctx=True)
def push(rt: Runtime, r: Ref, v: Any) -> None:
    a = _seq(r.v)
    a.append(_item(a, v))
    _check(rt, a)


@fn("append", 2, mut=True, ctx=True)
def append(rt: Runtime, r: Ref, v: Any) -> None:
    a = r.v
    if type(a) is str or type(a) is Char:
        S.str_append(r, v)
        rt.check_size(r.v)
        return
    a = _seq(a)
    if type(a) is bytearray:
        if type(v) is int:
            a.append(v & 0xFF)
        elif type(v) is bytearray:
            a.extend(v)
        elif type(v) in (str, Char):
            a.extend(str(v).encode())
        else:
            raise NoMatch
    elif type(v) is list:
        a.extend(own(v))
    else:
        raise NoMatch
    _check(rt, a)


@fn("insert", 3, mut=True, ctx=True)
def insert(rt: Runtime, r: Ref, index: Any, v: Any) -> None:
    a = _seq(r.v)
    i = _i(index)
    if i < 0:
        i = max(i + len(a), 0)
    a.insert(min(i, len(a)), _item(a, v))
    _check(rt, a)


@fn("pop", 1, 2, mut=True)
def pop(r: Ref, n: Any = None) -> Any:
    if type(r.v) in (str, Char):
        return S.str_pop(r, n)
    if n is not None:
        raise NoMatch
    a = _seq(r.v)
    return a.pop() if a else None


@fn("shift", 1, mut=True)
def shift(r: Ref) -> Any:
    a = _seq(r.v)
    return a.pop(0) if a else None


@fn("remove", 2, mut=True)
def remove(r: Ref, key: Any) -> Any:
    a = r.v
    if type(a) is dict:
        return a.pop(S._s(key), None)
    if type(a) in (str, Char):
        S.str_remove(r, key)
        return None
    a = _seq(a)
    i = _i(key)
    if i < 0:
        i += len(a)
    if not 0 <= i < len(a):
        return None
    return a.pop(i)


@fn("clear", 1, mut=True)
def clear(r: Ref) -> None:
    a = r.v
    if type(a) in (str, Char):
        r.v = ""
    elif type(a) in (list, dict, bytearray):
        a.clear()
    else:
        raise NoMatch


@fn("truncate", 2, mut=True)
def truncate(r: Ref, n: Any) -> None:
    k = _i(n)
    if type(r.v) in (str, Char):
        S.str_truncate(r, k)
        return
    a = _seq(r.v)
    del a[max(k, 0) :]


@fn("chop", 2, mut=True)
def chop(r: Ref, n: Any) -> None:
    a = _seq(r.v)
    k = _i(n)
    if k <= 0:
        a.clear() if k < 0 else None
        return
    del a[: max(len(a) - k, 0)]


@fn("pad", 3, mut=True, ctx=True)
def pad(rt: Runtime, r: Ref, n: Any, v: Any) -> None:
    k = _i(n)
    text = type(r.v) in (str, Char)
    limit = rt.limits.max_string_size if text else rt.limits.max_array_size
    if limit and k > limit:
        what = "max_string_size" if text else "max_array_size"
        raise ErrorLimit(
            "ErrorDataTooLarge", what, f"Length of {type_name(r.v)} would be {k}, more than {limit}"
        )
    if type(r.v) in (str, Char):
        S.str_pad(r, k, v)
        return
    a = _seq(r.v)
    item = _item(a, v)
    while len(a) < k:
        a.append(own(item))


@fn("reverse", 1, mut=True)
def reverse(r: Ref) -> None:
    _seq(r.v).reverse()


@fn("extract", 2, 3)
def extract(a: Any, start: Any, length: Any = None) -> Any:
    a = _seq(a)
    s, e = S.span(len(a), start, length)
    return own(a[s:e])


@fn("split", 2, 3, mut=True)
def split(r: Ref, at: Any, segments: Any = None) -> Any:
    if type(r.v) in (str, Char):
        return S.str_split(str(r.v), at, segments)
    if segments is not None:
        raise NoMatch
    a = _seq(r.v)
    s, _ = S.offset_len(len(a), _i(at), 0)
    tail = a[s:]
    del a[s:]
    return tail


def _split_off(rt: Runtime, r: Ref, what: Any, length: Any, *, keep_picked: bool) -> Any:
    """Leave in an array (or blob) the items `what` picks, or the others; return the rest.

    `what` is a predicate (a function pointer or a function's name) with no length, or
    the start of a span of `length` items. Both parts keep their order.
    """
    a = _seq(r.v)
    if type(what) in (FnPtr, str) and length is None:
        picked: list[Any] = []
        others: list[Any] = []
        for i, x in enumerate(a):
            (picked if _truthy(rt.call_with(what, x, [i])) else others).append(x)
    else:
        s, e = S.span(len(a), what, length)
        picked, others = a[s:e], a[:s] + a[e:]
    kept, removed = (picked, others) if keep_picked else (others, picked)
    a[:] = kept
    return removed


@fn("drain", 2, 3, mut=True, ctx=True)
def drain(rt: Runtime, r: Ref, what: Any, length: Any = None) -> Any:
    return _split_off(rt, r, what, length, keep_picked=False)


@fn("retain", 2, 3, mut=True, ctx=True)
def retain(rt: Runtime, r: Ref, what: Any, length: Any = None) -> Any:
    return _split_off(rt, r, what, length, keep_picked=True)


@fn("splice", 3, 4, mut=True)
def splice(r: Ref, start: Any, b: Any, c: Any = None) -> None:
    a = _seq(r.v)
    if c is None:
        s, e = S.span(len(a), start)
        repl = b
    else:
        s, e = S.span(len(a), start, b)
        repl = c
    if type(repl) is not type(a):
        raise NoMatch
    a[s:e] = own(repl)


@fn("get", 2)
def get(a: Any, i: Any) -> Any:
    if type(a) is dict:
        return a.get(S._s(i))
    if type(a) in (str, Char):
        return S.str_get(str(a), _i(i))
    a = _seq(a)
    k = _i(i)
    if k < 0:
        k += len(a)
    return a[k] if 0 <= k < len(a) else None


@fn("set", 3, mut=True)
def set_(r: Ref, i: Any, v: Any) -> None:
    a = r.v
    if type(a) is dict:
        a[S._s(i)] = own(v)
        return
    if type(a) in (str, Char):
        S.str_set(r, _i(i), v)
        return
    a = _seq(a)
    k = _i(i)
    if k < 0:
        k += len(a)
    if 0 <= k < len(a):
        a[k] = _item(a, v)


@fn("contains", 2)
def contains(a: Any, v: Any) -> bool:
    if type(a) is list:
        return any(values_equal(x, v) for x in a)
    if type(a) is bytearray:
        return type(v) is int and 0 <= v <= 255 and v in a
    if type(a) is dict:
        return S._s(v) in a
    if type(a) is Range:
        return type(v) is int and v in a.py_range()
    raise NoMatch


def _truthy(v: Any) -> bool:
    if type(v) is not bool:
        raise runtime(
            "ErrorMismatchDataType", f"Expecting a bool from the callback, got {type_name(v)}"
        )
    return v


def _callback(rt: Runtime, f: Any) -> Any:
    if type(f) is FnPtr:
        return f
    if type(f) is str:
        return FnPtr(f)
    raise NoMatch


@fn("index_of", 2, 3, ctx=True)
def index_of(rt: Runtime, a: Any, what: Any, start: Any = 0) -> int:
    if type(a) in (str, Char):
        return S.str_index_of(a, what, start)
    a = _seq(a)
    s, _ = S.offset_len(len(a), _i(start), 0)
    if type(what) is FnPtr or (type(what) is str and rt.has_fn(what)):
        for i in range(s, len(a)):
            if _truthy(rt.call_with(what, a[i], [i])):
                return i
        return -1
    for i in range(s, len(a)):
        if values_equal(a[i], what):
            return i
    return -1


@fn("filter", 2, ctx=True)
def filter_(rt: Runtime, a: Any, f: Any) -> Any:
    f = _callback(rt, f)
    if type(a) is dict:
        return {k: v for k, v in a.items() if _truthy(rt.call_with(f, k, [v]))}
    a = _seq(a)
    return [own(x) for i, x in enumerate(a) if _truthy(rt.call_with(f, x, [i]))]


@fn("map", 2, ctx=True)
def map_(rt: Runtime, a: Any, f: Any) -> list[Any]:
    f = _callback(rt, f)
    return [rt.call_with(f, x, [i]) for i, x in enumerate(_seq(a))]


@fn("for_each", 2, ctx=True)
def for_each(rt: Runtime, a: Any, f: Any) -> None:
    f = _callback(rt, f)
    a = _seq(a)
    for i in range(len(a)):
        arity = rt.fnptr_arity(f)
        args = [i][: arity if arity is not None else 1]
        _, new = rt.call_fnptr(f, args, a[i], False)
        a[i] = new


@fn("some", 2, ctx=True)
def some(rt: Runtime, a: Any, f: Any) -> bool:
    f = _callback(rt, f)
    return any(_truthy(rt.call_with(f, x, [i])) for i, x in enumerate(_seq(a)))


@fn("all", 2, ctx=True)
def all_(rt: Runtime, a: Any, f: Any) -> bool:
    f = _callback(rt, f)
    return all(_truthy(rt.call_with(f, x, [i])) for i, x in enumerate(_seq(a)))


@fn("find", 2, ctx=True)
def find(rt: Runtime, a: Any, f: Any) -> Any:
    f = _callback(rt, f)
    for i, x in enumerate(_seq(a)):
        if _truthy(rt.call_with(f, x, [i])):
            return x
    return None


@fn("find_map", 2, ctx=True)
def find_map(rt: Runtime, a: Any, f: Any) -> Any:
    f = _callback(rt, f)
    for i, x in enumerate(_seq(a)):
        r = rt.call_with(f, x, [i])
        if r is not None:
            return r
    return None


def _reduce(rt: Runtime, items: list[Any], f: Any, acc: Any) -> Any:
    f = _callback(rt, f)
    for i, x in items:
        arity = rt.fnptr_arity(f)
        args = [acc, x, i][: arity if arity is not None else 2]
        acc, _ = rt.call_fnptr(f, args, acc, False)
    return acc


@fn("reduce", 2, 3, ctx=True)
def reduce(rt: Runtime, a: Any, f: Any, init: Any = None) -> Any:
    return _reduce(rt, list(enumerate(_seq(a))), f, init)


@fn("reduce_rev", 2, 3, ctx=True)
def reduce_rev(rt: Runtime, a: Any, f: Any, init: Any = None) -> Any:
    return _reduce(rt, list(reversed(list(enumerate(_seq(a))))), f, init)


_ORDER = {bool: 0, int: 1, float: 1, Char: 2, str: 2}


def _sort_key(x: Any) -> Any:
    t = type(x)
    if x is None:
        return (-1, 0)
    if t in _ORDER:
        return (_ORDER[t], x)
    return (9, type_name(x))


@fn("sort", 1, 2, mut=True, ctx=True)
def sort(rt: Runtime, r: Ref, f: Any = None) -> None:
    a = _seq(r.v)
    if f is None:
        if type(a) is bytearray:
            a[:] = bytearray(sorted(a))
            return
        kinds = {type(x) for x in a}
        if len(kinds) == 1 and kinds <= {int, float, str, Char}:
            a.sort()
        else:
            a.sort(key=_sort_key)
        return
    f = _callback(rt, f)
    if type(a) is bytearray:
        raise NoMatch

    def cmp(x: Any, y: Any) -> int:
        v, _ = rt.call_fnptr(f, [x, y])
        if type(v) is not int:
            raise runtime("ErrorMismatchDataType", "The comparer must return an integer")
        return (v > 0) - (v < 0)

    a.sort(key=functools.cmp_to_key(cmp))


@fn("dedup", 1, 2, mut=True, ctx=True)
def dedup(rt: Runtime, r: Ref, f: Any = None) -> None:
    a = _seq(r.v)
    out: list[Any] = []
    for x in a:
        if out:
            same = (
                values_equal(out[-1], x)
                if f is None
                else _truthy(rt.call_fnptr(_callback(rt, f), [out[-1], x])[0])
            )
            if same:
                continue
        out.append(x)
    a[:] = out


@fn("zip", 3, ctx=True)
def zip_(rt: Runtime, a: Any, b: Any, f: Any) -> list[Any]:
    f = _callback(rt, f)
    return [rt.call_fnptr(f, [x, y])[0] for x, y in zip(_seq(a), _seq(b), strict=False)]
