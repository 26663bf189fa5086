"""An embedded, sandboxed Rhai interpreter: ``eval(script)`` and the `Engine` behind it.

from core.rhai import Engine, Limits, eval
eval("let x = 40; x + 2")                       # 42
Engine(Limits(max_operations=10_000)).eval(s)   # raises RhaiError subclasses
"""

from core.rhai.engine import Engine, Limits, eval
from core.rhai.errors import (
    ErrorLimit,
    ErrorTerminated,
    ErrorThrown,
    RhaiError,
    RhaiParseError,
    RhaiRuntimeError,
)

__all__ = [
    "Engine",
    "ErrorLimit",
    "ErrorTerminated",
    "ErrorThrown",
    "Limits",
    "RhaiError",
    "RhaiParseError",
    "RhaiRuntimeError",
    "eval",
]
