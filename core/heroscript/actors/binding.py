"""Turn an actor method's signature into parameter metadata and bind values to it."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.heroscript.context import ActionContext
from core.heroscript.params import (
    Percent,
    to_bool,
    to_duration,
    to_float,
    to_int,
    to_list,
    to_percent,
)

MISSING: Any = inspect.Parameter.empty


class ParamTypeError(ValueError):
    """A value does not convert to the type a parameter declares."""


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of an action.

    Attributes:
        name: the keyword written in HeroScript.
        hint: the resolved type hint (``str`` when the method has none).
        default: the default value, or `MISSING` when the parameter is required.
    """

    name: str
    hint: Any
    default: Any = MISSING

    @property
    def required(self) -> bool:
        """Whether the script must give this parameter."""
        return self.default is MISSING

    @property
    def type_name(self) -> str:
        """A short readable name of the type, e.g. ``list[int]`` or ``float | None``."""
        return type_name(self.hint)


@dataclass(frozen=True)
class Signature:
    """What binding needs to know about a method."""

    params: tuple[ParamInfo, ...]
    context_param: str | None
    takes_args: bool
    takes_kwargs: bool
    returns: Any


def optional_inner(hint: Any) -> Any | None:
    """Return X for ``X | None`` / ``Optional[X]``, else None."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1 and len(typing.get_args(hint)) == 2:
            return rest[0]
    return None


def type_name(hint: Any) -> str:
    """Return a readable name for a supported type hint."""
    inner = optional_inner(hint)
    if inner is not None:
        return f"{type_name(inner)} | None"
    if typing.get_origin(hint) is list:
        args = typing.get_args(hint)
        return f"list[{type_name(args[0]) if args else 'str'}]"
    if hint is list:
        return "list[str]"
    if hint is timedelta:
        return "duration"
    if hint is Percent:
        return "percent"
    if hint is Any:
        return "any"
    return getattr(hint, "__name__", str(hint))


_STRING_CONVERTERS: dict[Any, Callable[[str], Any]] = {
    str: str,
    int: to_int,
    float: to_float,
    bool: to_bool,
    Percent: to_percent,
    timedelta: to_duration,
}


def _from_text(converter: Callable[[str], Any], value: str) -> Any:
    try:
        return converter(value)
    except ValueError:
        raise ParamTypeError(f"got {value!r}") from None


def convert(value: Any, hint: Any) -> Any:
    """Convert a HeroScript string (or a JSON value from OpenRPC) to ``hint``.

    Raises:
        ParamTypeError: the value does not fit the type.
    """
    # The common case first, a plain type written as text: one lookup, no typing calls.
    plain = _STRING_CONVERTERS.get(hint) if type(value) is str else None
    if plain is not None:
        return _from_text(plain, value)
    inner = optional_inner(hint)
    if inner is not None:
        return None if value is None else convert(value, inner)
    if hint is Any or hint is object:
        return value
    if hint is list or typing.get_origin(hint) is list:
        args = typing.get_args(hint)
        item = args[0] if args else str
        if isinstance(value, str):
            items: list[Any] = to_list(value)
        elif isinstance(value, list):
            items = value
        else:
            raise ParamTypeError(f"got {value!r}")
        return [convert(x, item) for x in items]
    if isinstance(value, str):
        converter = _STRING_CONVERTERS.get(hint)
        if converter is None:
            raise ParamTypeError(f"unsupported parameter type {type_name(hint)}")
        return _from_text(converter, value)
    # JSON values from OpenRPC: accept the natural JSON type for each hint.
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, bool, str) and type(value) is hint:
        return value
    if hint is Percent and isinstance(value, int | float) and not isinstance(value, bool):
        return to_percent(str(value))
    if hint is timedelta and isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ParamTypeError(f"got {value!r}")


def inspect_method(method: Callable[..., Any]) -> Signature:
    """Read a method's parameters, their type hints and defaults."""
    hints = typing.get_type_hints(method)
    params: list[ParamInfo] = []
    context_param = None
    takes_args = takes_kwargs = False
    for param in inspect.signature(method).parameters.values():
        hint = hints.get(param.name, str)
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            takes_args = True
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            takes_kwargs = True
        elif hint is ActionContext:
            context_param = param.name
        else:
            params.append(ParamInfo(param.name, hint, param.default))
    return Signature(
        tuple(params), context_param, takes_args, takes_kwargs, hints.get("return", Any)
    )
