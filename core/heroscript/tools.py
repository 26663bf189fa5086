"""ScriptTools: what front ends ask of HeroScript and the actors, in one object."""

from __future__ import annotations

from typing import Any

from core.heroscript.actors.registry import ActionInfo, ActorRegistry
from core.heroscript.context import ActionContext
from core.heroscript.errors import Diagnostic
from core.heroscript.highlight import Span, highlight_spans
from core.heroscript.limits import MAX_SCRIPT_BYTES, script_size
from core.heroscript.openrpc import discover, handle_jsonrpc
from core.heroscript.validate import validate


class ScriptTools:
    """Validation, highlighting, templates and JSON-RPC over the engine's actor registry.

    The registry is loaded when the engine starts; until then validation checks syntax
    only and there are no actions.
    """

    def __init__(self, registry: ActorRegistry | None = None) -> None:
        self.registry = registry

    def validate(self, text: str) -> list[Diagnostic]:
        """Every problem of a text, against the actors when they are loaded.

        A text over the params size limit is one problem, found without parsing it.
        """
        return validate(text, self.registry, limit=MAX_SCRIPT_BYTES)

    @staticmethod
    def highlight(text: str) -> list[Span]:
        """Spans to colour; never raises. A text too large to be a job gets none."""
        if script_size(text) > MAX_SCRIPT_BYTES:
            return []
        return highlight_spans(text)

    def actions(self) -> list[tuple[ActionInfo, str]]:
        """Every action with its HeroScript template."""
        registry = self.registry
        if registry is None:
            return []
        return [(info, registry.template(info.actor, info.name)) for info in registry.actions()]

    def _loaded(self) -> ActorRegistry:
        if self.registry is None:
            raise LookupError("the actors are not loaded yet")
        return self.registry

    async def rpc(self, request: bytes | str | dict[str, Any] | list[Any]) -> Any:
        """Answer a JSON-RPC 2.0 request (`rpc.discover` included)."""
        return await handle_jsonrpc(self._loaded(), request, ActionContext())

    def discover(self) -> dict[str, Any]:
        """The OpenRPC document of the registry."""
        return discover(self._loaded())
