"""Actors loaded by name in the registry tests (config `actors.modules`)."""

from __future__ import annotations


class Sample:
    """A module actor."""

    def ping(self) -> str:
        """Answer pong."""
        return "pong"


class Counter:
    """A class named with module:Class."""

    def __init__(self) -> None:
        self.count = 0

    def up(self, by: int = 1) -> int:
        """Count up."""
        self.count += by
        return self.count


ACTORS = {"sample": Sample}
