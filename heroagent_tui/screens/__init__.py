"""The app's screens; each mediates between its widgets and the engine API."""
