"""Object map functions: keys, values, mixin, fill_with, to_json."""

from __future__ import annotations

import json
import math
from typing import Any

from core.rhai.errors import runtime
from core.rhai.runtime import NoMatch
from core.rhai.stdlib import Lib
from core.rhai.values import FnPtr, Range, Timestamp, own, to_string

lib = Lib()
fn = lib.fn


def _map(m: Any) -> dict[str, Any]:
    if type(m) is not dict:
        raise NoMatch
    return m


@fn("keys", 1)
def keys(m: Any) -> list[Any]:
    # Rhai's maps are ordered by key (a BTreeMap); Python dicts keep insertion order.
    return sorted(_map(m))


@fn("values", 1)
def values(m: Any) -> list[Any]:
    table = _map(m)
    return [own(table[k]) for k in sorted(table)]


@fn("mixin", 2)
def mixin(m: Any, other: Any) -> None:
    _map(m).update(own(_map(other)))


@fn("fill_with", 2)
def fill_with(m: Any, other: Any) -> None:
    target = _map(m)
    for k, v in _map(other).items():
        if k not in target:
            target[k] = own(v)


def to_json_value(v: Any) -> Any:
    """A JSON-ready Python value for a Rhai value (function pointers by name)."""
    t = type(v)
    if t is dict:
        return {k: to_json_value(v[k]) for k in sorted(v)}
    if t is list:
        return [to_json_value(x) for x in v]
    if t is bytearray:
        return list(v)
    if t is FnPtr:
        if v.curry:
            return [v.name, *(to_json_value(x) for x in v.curry)]
        return v.name
    if t is float and not math.isfinite(v):
        return None
    if t in (Range, Timestamp):
        return to_string(v)
    if v is None or t in (bool, int, float, str) or isinstance(v, str):
        return str(v) if isinstance(v, str) else v
    return to_string(v)


@fn("to_json", 1)
def to_json(m: Any) -> str:
    if type(m) not in (dict, list):
        raise NoMatch
    try:
        return json.dumps(to_json_value(m), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise runtime("ErrorMismatchDataType", f"Cannot convert to JSON: {exc}") from None
