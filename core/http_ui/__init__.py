"""The HTTP UI: a JSON API, server-sent events and one HTML page, served inside the engine."""
