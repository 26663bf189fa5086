"""A one-line bar naming the views and their number keys, the current one marked."""

from __future__ import annotations

from textual.widgets import Static

VIEWS = (
    ("dashboard", "Dashboard"),
    ("queues", "Queues"),
    ("jobs", "Jobs"),
    ("logs", "Logs"),
    ("submit", "Submit"),
    ("webdav", "WebDAV"),
    ("http", "HTTP"),
    ("scheduled", "Scheduled"),
    ("dead", "Dead"),
)


class ViewBar(Static):
    """Shows where you are and how to get elsewhere (`1`…`9`)."""

    def __init__(self, current: str) -> None:
        parts = []
        for n, (mode, title) in enumerate(VIEWS, 1):
            style = "b $accent" if mode == current else "$text-muted"
            parts.append(f"[{style}]{n} {title}[/]")
        super().__init__("  ".join(parts), classes="view-bar")
