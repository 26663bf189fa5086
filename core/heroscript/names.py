"""`name_fix` as V defines it (spec §6), and the closest-name helper for suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache

_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TO_UNDERSCORE = frozenset("-;:. ")


def _fix_part(text: str) -> str:
    out: list[str] = []
    prev = ""
    for ch in text:
        if ch in _KEEP:
            out.append(ch)
        elif ch == "_" or ch in _TO_UNDERSCORE:
            if prev == "_":
                # A skipped separator counts as dropped: `prev` stays `_`.
                continue
            out.append("_")
        else:
            continue
        # V compares against the byte as written, before `-` became `_`.
        prev = ch
    return "".join(out)


# Longer names are fixed without the cache: 4096 cached megabyte-long values (a
# `to_bool` of a long value goes through here) would pin gigabytes.
_CACHED_MAX_LEN = 256


def name_fix(name: str) -> str:
    """Normalise an actor, action or key name the way V's `texttools.name_fix` does.

    Lowercases, turns ``-``, ``;``, ``:``, ``.`` and space into ``_``, collapses
    repeated underscores, drops every other character and keeps one file extension.

    Args:
        name: the raw name.

    Returns:
        The normalised name, e.g. ``My-Actor`` gives ``my_actor``.
    """
    return _name_fix_cached(name) if len(name) <= _CACHED_MAX_LEN else _name_fix(name)


@lru_cache(maxsize=4096)
def _name_fix_cached(name: str) -> str:
    return _name_fix(name)


def _name_fix(name: str) -> str:
    text = name.lower().strip()
    text = text.split("#", 1)[0]
    tail = text.rsplit("/", 1)[-1]
    dot = tail.rfind(".")
    if len(text) >= 3 and 0 < dot < len(tail) - 1:
        stem, ext = text.rsplit(".", 1)
        return f"{_fix_part(stem)}.{ext}"
    return _fix_part(text)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate closest to ``word``, or None when nothing is close."""
    options = list(candidates)
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    if found:
        return found[0]
    # A prefix match still helps for short names that difflib rates low.
    prefixed = [o for o in options if o.startswith(word[:3])] if word else []
    return prefixed[0] if prefixed else None
