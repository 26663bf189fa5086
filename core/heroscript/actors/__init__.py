"""Actors: the registry, the binding of parameters, and the built-in actors."""
