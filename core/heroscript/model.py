"""The parsed form of HeroScript: actions, their kinds, and the playbook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.heroscript.params import Params


class ActionKind(StrEnum):
    """The layer an action belongs to, from its number of ``!`` (V's names)."""

    DAL = "dal"
    SAL = "sal"
    MACRO = "macro"
    WAL = "wal"

    @property
    def bangs(self) -> str:
        """The ``!`` prefix that writes this kind."""
        return "!" * (_KINDS.index(self) + 1)

    @classmethod
    def from_bangs(cls, count: int) -> ActionKind:
        """Return the kind for ``count`` leading ``!`` (1 to 4)."""
        return _KINDS[count - 1]


# Looked up once per action line: a tuple is much cheaper than `list(ActionKind)`.
_KINDS = tuple(ActionKind)


Locator = Callable[[str], tuple[int, int]]


def _no_position(_key: str) -> tuple[int, int]:
    return (0, 0)


@dataclass(slots=True)
class Action:
    """One ``!!actor.name …`` with its parameters.

    Attributes:
        id: 1, 2, 3 … in order of appearance in the playbook.
        kind: the layer, from the number of ``!``.
        actor: normalised actor name (``core`` when the text had no dot).
        name: normalised action name.
        params: the parameters, all strings.
        comments: the ``//`` lines right above the action, joined by newlines.
        line: 1-based line of the action line in its text.
        col: 1-based column of the action's first ``!``.
        end_line: 1-based last line of the action's parameter block.
        source: file name the action came from, if any.
    """

    id: int
    kind: ActionKind
    actor: str
    name: str
    params: Params = field(default_factory=Params)
    comments: str = ""
    line: int = 0
    col: int = 1
    end_line: int = 0
    source: str = ""
    locate: Locator = field(default=_no_position, compare=False, repr=False)

    @property
    def method(self) -> str:
        """``actor.name``, the name used by the registry and by OpenRPC."""
        return f"{self.actor}.{self.name}"

    def key_position(self, key: str) -> tuple[int, int]:
        """Return the 1-based (line, col) where ``key`` was written, or the action line."""
        line, col = self.locate(key)
        return (line, col) if line else (self.line, 1)

    def to_dict(self) -> dict[str, Any]:
        """Return the shape used by `heroscript_cases.json`."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "actor": self.actor,
            "name": self.name,
            "params": dict(self.params.values),
            "args": list(self.params.args),
            "comments": self.comments,
        }


@dataclass(slots=True)
class Playbook:
    """The ordered actions parsed from one or more texts.

    Attributes:
        actions: the actions in order.
        othertext: comment text that did not belong to an action.
    """

    actions: list[Action] = field(default_factory=list)
    othertext: str = ""

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, index: int) -> Action:
        return self.actions[index]

    def to_list(self) -> list[dict[str, Any]]:
        """Return every action as a dict (see `Action.to_dict`)."""
        return [action.to_dict() for action in self.actions]
