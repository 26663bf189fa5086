"""The Submit screen checks and colours Rhai when the type is rhaiscript."""

from __future__ import annotations

from textual.widgets import Select, Static

from core.config import Config
from heroagent_tui.screens.submit import SubmitScreen
from heroagent_tui.widgets.heroscript_area import HeroScriptArea
from tests.tui.conftest import running_app, until


async def test_rhai_is_validated_and_highlighted_in_the_editor(engine_config: Config) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        screen = app.screen
        screen.query_one("#params-type", Select).value = "rhaiscript"
        editor = screen.query_one(HeroScriptArea)
        editor.load_text("let x = ;\n")
        box = screen.query_one("#diagnostics", Static)
        await until(pilot, lambda: "1:9" in str(box.render()), what="the parse error at 1:9")
        assert "Expecting an expression" in str(box.render())
        editor.load_text("let x = 40;\nx + 2\n")
        await until(pilot, lambda: "valid Rhai" in str(box.render()), what="valid Rhai")
        styles = {name for row in editor._highlights.values() for (_, _, name) in row}
        assert {"heroscript.action", "heroscript.value"} <= styles
