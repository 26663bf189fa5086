"""Widgets of the terminal app, each one concern; they know only core.api and core.events."""
