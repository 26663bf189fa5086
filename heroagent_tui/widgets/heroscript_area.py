"""A TextArea that highlights HeroScript with the engine's own lexer and the app's theme."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.style import Style
from textual.theme import Theme
from textual.widgets import TextArea
from textual.widgets.text_area import TextAreaTheme

from core.api import HighlightSpan

Highlighter = Callable[[str], list[HighlightSpan]]

THEME_NAME = "heroscript"


def text_area_theme(theme: Theme) -> TextAreaTheme:
    """Syntax colours taken from the app theme's variables only."""
    fg = theme.foreground or "#888888"
    return TextAreaTheme(
        name=THEME_NAME,
        syntax_styles={
            "heroscript.action": Style(color=theme.primary, bold=True),
            "heroscript.key": Style(color=theme.accent or fg),
            "heroscript.value": Style(color=theme.success or fg),
            "heroscript.arg": Style(color=theme.secondary or fg),
            "heroscript.comment": Style(color=fg, dim=True, italic=True),
        },
    )


class HeroScriptArea(TextArea):
    """HeroScript editor (or, read only, viewer), coloured by the engine's own lexer."""

    def __init__(self, text: str, *, highlighter: Highlighter, **options: Any) -> None:
        self._highlighter = highlighter
        super().__init__(text, **options)

    def rehighlight(self) -> None:
        """Colour the text again (the highlighter's language changed)."""
        self._build_highlight_map()
        self.refresh()

    def on_mount(self) -> None:
        self._apply_theme(self.app.current_theme)
        self.app.theme_changed_signal.subscribe(self, self._apply_theme)

    def _apply_theme(self, theme: Theme) -> None:
        self.register_theme(text_area_theme(theme))
        # Setting the same name again does not refresh; go through the default first.
        self.theme = "css"
        self.theme = THEME_NAME

    def _build_highlight_map(self) -> None:
        # Tree-sitter has no HeroScript grammar; the engine's lexer gives the spans.
        self._line_cache.clear()
        highlights = self._highlights
        highlights.clear()
        lines = self.document.lines
        for span in self._highlighter(self.text):
            row = span.line - 1
            if row >= len(lines):
                continue
            line = lines[row]
            # The renderer expects byte offsets into the UTF-8 line.
            start = len(line[: span.start].encode())
            end = len(line[: span.end].encode())
            highlights[row].append((start, end, f"heroscript.{span.kind}"))
