"""The registry of actors: plain classes whose public methods are actions.

An actor is any Python class (or instance). Each public method is an action
named ``actor.method``; its parameters are bound by name from the script, and
converted from their type hints (str, int, float, bool, ``list[T]``,
``T | None``, `datetime.timedelta` for durations, `Percent`). A parameter
typed `ActionContext` receives the run's context, ``*args: str`` receives the
positional args. ``async def`` actions run on the event loop, plain ``def``
actions in a worker thread (on the loop itself when marked `inline`: cheap ones), and
actions marked with `in_process` in a child process that is killed when the job times
out or is cancelled.

A class whose ``__init__`` takes a ``settings`` argument is built with the
registry's `ActorsSettings`; any other class is built without arguments.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from core.heroscript.actors.binding import (
    MISSING,
    ParamInfo,
    ParamTypeError,
    Signature,
    convert,
    inspect_method,
)
from core.heroscript.child import RUN_IN_CHILD
from core.heroscript.errors import ActionError
from core.heroscript.formatter import render_value
from core.heroscript.inline import RUN_INLINE, InlineBudget
from core.heroscript.model import Action
from core.heroscript.names import closest, name_fix
from core.heroscript.settings import ActorsSettings

ENTRY_POINT_GROUP = "heroagent.actors"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionInfo:
    """One action: where it lives, its parameters and its documentation."""

    actor: str
    name: str
    doc: str
    signature: Signature
    func: Callable[..., Any]
    is_async: bool
    # Marked with `in_process`: runs in a child process that a timeout or cancel kills.
    in_child: bool = False
    # Marked with `inline` (a plain def only): runs on the event loop while its calls
    # stay cheap; None for every other action.
    inline: InlineBudget | None = field(default=None, compare=False)

    @property
    def method(self) -> str:
        """``actor.action``."""
        return f"{self.actor}.{self.name}"

    @property
    def params(self) -> tuple[ParamInfo, ...]:
        """The named parameters, in the method's order."""
        return self.signature.params

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return self.doc.strip().split("\n", 1)[0] if self.doc else ""


@dataclass(frozen=True)
class ActorInfo:
    """One actor and its actions; ``source`` says where it came from."""

    name: str
    doc: str
    source: str
    actions: Mapping[str, ActionInfo]


@dataclass(frozen=True)
class BoundAction:
    """An action with its arguments converted and ready to call."""

    info: ActionInfo
    kwargs: dict[str, Any]
    args: tuple[str, ...]


def _instantiate(target: Any, settings: ActorsSettings) -> Any:
    if not inspect.isclass(target):
        return target
    factory: Callable[..., Any] = target
    if "settings" in inspect.signature(factory).parameters:
        return factory(settings=settings)
    return factory()


def _public_methods(instance: Any) -> Iterable[tuple[str, Callable[..., Any]]]:
    for attr in sorted(dir(type(instance))):
        if attr.startswith("_"):
            continue
        value = getattr(instance, attr)
        if inspect.isroutine(value):
            yield attr, value


class ActorRegistry:
    """Actors by name, shared by HeroScript, OpenRPC and the TUI.

    Attributes:
        settings: what the built-ins may do and which modules to load.
        load_errors: plugins or modules that failed to load, one line each.
    """

    def __init__(self, settings: ActorsSettings | None = None) -> None:
        self.settings = settings or ActorsSettings()
        self._actors: dict[str, ActorInfo] = {}
        self.load_errors: list[str] = []
        # Counts changes to the actors: what was checked against an older one is stale.
        self.version = 0

    @classmethod
    def from_settings(
        cls, settings: ActorsSettings | None = None, plugins: bool = True
    ) -> ActorRegistry:
        """Return a registry with the built-ins, the entry points and the configured modules."""
        registry = cls(settings)
        registry.load_builtins()
        if plugins:
            registry.load_entry_points()
        registry.load_modules(registry.settings.modules)
        return registry

    def register(self, name: str, actor: Any, source: str = "") -> ActorInfo:
        """Register a class (built with the settings) or an instance under ``name``."""
        key = name_fix(name)
        instance = _instantiate(actor, self.settings)
        actions: dict[str, ActionInfo] = {}
        for attr, func in _public_methods(instance):
            action_name = name_fix(attr)
            is_async = inspect.iscoroutinefunction(func)
            in_child = bool(getattr(func, RUN_IN_CHILD, False))
            cheap = getattr(func, RUN_INLINE, False) and not is_async and not in_child
            actions[action_name] = ActionInfo(
                actor=key,
                name=action_name,
                doc=inspect.getdoc(func) or "",
                signature=inspect_method(func),
                func=func,
                is_async=is_async,
                in_child=in_child,
                inline=InlineBudget(f"{key}.{action_name}") if cheap else None,
            )
        info = ActorInfo(key, inspect.getdoc(type(instance)) or "", source, actions)
        self._actors[key] = info
        self.version += 1
        return info

    def unregister(self, name: str) -> None:
        """Remove an actor; nothing happens when it is not there."""
        self._actors.pop(name_fix(name), None)
        self.version += 1

    def load_builtins(self) -> None:
        """Register ``core``, ``fake``, ``file`` and, when enabled, ``shell``."""
        from core.heroscript.actors.builtins import builtin_actors

        for name, actor in builtin_actors(self.settings).items():
            self.register(name, actor, source="builtin")

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every entry point of ``group``: its name is the actor's name."""
        loaded: list[str] = []
        for point in entry_points(group=group):
            try:
                self.register(point.name, point.load(), source=f"entry point {point.value}")
            except Exception as exc:  # a broken plugin must not hide the others
                self._load_failed(f"entry point {point.name} ({point.value})", exc)
            else:
                loaded.append(point.name)
        return loaded

    def load_modules(self, names: Iterable[str]) -> list[str]:
        """Register actors from modules: ``pkg.mod`` (its ``ACTORS`` dict) or ``pkg.mod:Class``."""
        loaded: list[str] = []
        for spec in names:
            module_name, _, attr = spec.partition(":")
            try:
                module = importlib.import_module(module_name)
                if attr:
                    target = getattr(module, attr)
                    found = {getattr(target, "actor_name", attr.lower()): target}
                else:
                    found = dict(getattr(module, "ACTORS"))  # noqa: B009 - a clear AttributeError
                for name, actor in found.items():
                    self.register(name, actor, source=f"module {spec}")
                    loaded.append(name_fix(name))
            except Exception as exc:  # a broken module must not hide the others
                self._load_failed(f"module {spec}", exc)
        return loaded

    def _load_failed(self, what: str, exc: Exception) -> None:
        message = f"{what}: {type(exc).__name__}: {exc}"
        log.warning("actor not loaded: %s", message)
        self.load_errors.append(message)

    def actors(self) -> list[ActorInfo]:
        """All actors, sorted by name."""
        return [self._actors[name] for name in sorted(self._actors)]

    def actions(self) -> list[ActionInfo]:
        """All actions of all actors, sorted by ``actor.action``."""
        return [a for actor in self.actors() for _, a in sorted(actor.actions.items())]

    def methods(self) -> list[str]:
        """Every ``actor.action`` name."""
        return [a.method for a in self.actions()]

    def lookup(self, actor: str, action: str, line: int = 0, col: int = 1) -> ActionInfo:
        """Return an action, or raise `ActionError` naming the closest existing one."""
        method = f"{actor}.{action}"
        found = self._actors.get(actor)
        if found is not None and action in found.actions:
            return found.actions[action]
        if found is not None:
            near = closest(action, found.actions)
            guess = f"{actor}.{near}" if near else None
            what = "unknown action"
        else:
            guess = closest(method, self.methods())
            what = f"unknown actor '{actor}'"
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise ActionError(method, what + hint, line, col, suggestion=guess)

    def bind(self, action: Action) -> BoundAction:
        """Look up ``action`` and convert its params to the method's types.

        Raises:
            ActionError: unknown actor or action, unknown, missing or ill-typed parameter.
        """
        info = self.lookup(action.actor, action.name, action.line, action.col)
        if action.params.args and not info.signature.takes_args:
            args = " ".join(action.params.args)
            message = f"takes no positional args, got '{args}'"
            raise ActionError(info.method, message, action.line, action.col)

        kwargs = self.bind_values(
            info, action.params.values, action.line, action.key_position, action.col
        )
        return BoundAction(info, kwargs, tuple(action.params.args))

    def bind_values(
        self,
        info: ActionInfo,
        values: Mapping[str, Any],
        line: int = 0,
        where: Callable[[str], tuple[int, int]] | None = None,
        action_col: int = 1,
    ) -> dict[str, Any]:
        """Convert named ``values`` (strings or JSON values) to ``info``'s parameters.

        Args:
            info: the action.
            values: parameter name to value.
            line: the action's line, for errors.
            where: gives the (line, col) where a key was written, for errors.
            action_col: the action's column, for errors about missing parameters.
        """

        def at(key: str) -> tuple[int, int]:
            return where(key) if where is not None else (line, action_col)

        known = {p.name: p for p in info.params}
        if not info.signature.takes_kwargs:
            for key in values:
                if key not in known:
                    near = closest(key, known)
                    hint = f"; did you mean '{near}'?" if near else ""
                    expected = ", ".join(known) or "none"
                    message = f"unknown parameter '{key}' (parameters: {expected}){hint}"
                    raise ActionError(info.method, message, *at(key), key, near)
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            param = known.get(key)
            if param is None:
                kwargs[key] = value
                continue
            try:
                kwargs[key] = convert(value, param.hint)
            except (ParamTypeError, ValueError):
                message = f"parameter '{key}' expects {param.type_name}, got {_show(value)}"
                raise ActionError(info.method, message, *at(key), key) from None
        for param in info.params:
            if param.required and param.name not in kwargs:
                message = f"missing parameter '{param.name}' ({param.type_name})"
                raise ActionError(info.method, message, line, action_col, param.name)
        return kwargs

    def template(self, actor: str, action: str) -> str:
        """Return a HeroScript skeleton of an action, with its parameters to fill in."""
        info = self.lookup(name_fix(actor), name_fix(action))
        lines = [f"!!{info.method}"]
        for param in info.params:
            if param.required:
                value, note = "''", f"{param.type_name}, required"
            else:
                value, note = _template_default(param.default), param.type_name
            lines.append(f"    {param.name}:{value} // {note}")
        return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _template_default(default: Any) -> str:
    if default is None or default is MISSING:
        return "''"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list | tuple):
        return render_value(",".join(str(x) for x in default))
    if hasattr(default, "total_seconds"):
        return render_value(f"{default.total_seconds():g}s")
    return render_value(str(default))
