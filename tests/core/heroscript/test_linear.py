"""Parsing cost grows linearly with the text (issue 12): ratios of timings, no wall clock.

Each check times the same work on a text and on one 4x (or 16x) longer, built the
same way, and compares the medians of interleaved runs: linear work costs about 4x
(16x), quadratic work 16x (256x). Times are the thread's CPU time, which other
processes on a shared machine do not inflate, and a ratio is measured again with
more runs before it fails, so noise does not fail the test but a regression does.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.heroscript.errors import HeroScriptError
from core.heroscript.formatter import format_text
from core.heroscript.highlight import highlight_spans
from core.heroscript.parser import parse_all
from core.heroscript.tokenizer import parse_params_text
from core.heroscript.validate import validate


def _format(text: str) -> None:
    with contextlib.suppress(HeroScriptError):
        format_text(text)


def _params(text: str) -> None:
    # The params parser alone, as V's `paramsparser.parse` gets them: no action name.
    with contextlib.suppress(HeroScriptError):
        parse_params_text(text.partition(" ")[2])


STEPS: dict[str, Callable[[str], object]] = {
    "parse": parse_all,
    "params": _params,
    "highlight": highlight_spans,
    "validate": validate,
    "format": _format,
}


def _medians(
    work: Callable[[str], object], small: str, large: str, runs: int
) -> tuple[float, float]:
    """Median seconds of ``work`` on each text, runs interleaved so both see the same load."""
    times: tuple[list[float], list[float]] = ([], [])
    # Collection pauses depend on everything else alive in the test process, not on
    # the text: they are kept out of the timings.
    gc.disable()
    try:
        for _ in range(runs):
            for text, out in ((small, times[0]), (large, times[1])):
                started = time.thread_time()
                work(text)
                out.append(time.thread_time() - started)
    finally:
        gc.enable()
    return statistics.median(times[0]), statistics.median(times[1])


def growth(work: Callable[[str], object], small: str, large: str, bound: float) -> float:
    """Return how much more ``work`` costs on ``large``, measured again if it reaches ``bound``."""
    for runs in (3, 9):
        cost_small, cost_large = _medians(work, small, large, runs)
        ratio = cost_large / max(cost_small, 1e-6)
        if ratio < bound:
            break
    return ratio


# Texts of about `n` characters, built so that a 4x larger `n` repeats the same thing.
SHAPES: dict[str, tuple[Callable[[int], str], int]] = {
    "single_quoted_value": (lambda n: "!!a.b k:'" + "x" * n + "'\n", 1 << 16),
    "double_quoted_value": (lambda n: '!!a.b k:"' + "x " * (n // 2) + '"\n', 1 << 14),
    "unterminated_value": (lambda n: "!!a.b k:'" + "x" * n + "\n    y:1\n", 1 << 14),
    "escaped_quotes": (lambda n: "!!a.b k:'" + "\\'" * (n // 2) + "'\n", 1 << 13),
    "backslashes": (lambda n: "!!a.b k:'" + "\\" * n + "'\n", 1 << 14),
    "spaces_before_an_arg": (lambda n: "!!a.b x" + " " * n + "y\n", 1 << 16),
    "quotes_and_colons": (lambda n: "!!a.b " + "':\"" * (n // 3) + "\n", 1 << 12),
    "bang_fragments": (lambda n: "!!a.b " + "!!x. " * (n // 5) + "\n", 1 << 12),
    "comment_after_quotes": (lambda n: "!!a.b " + "k:'x' " * (n // 6) + "// c\n", 1 << 11),
    "list_of_quoted_items": (
        lambda n: "!!a.b k:" + " ,".join(["'a b'"] * (n // 7)) + "\n",
        1 << 12,
    ),
    "many_keys": (
        lambda n: "!!a.b\n" + "".join(f"    k{i}:v{i}\n" for i in range(n // 12)),
        1 << 12,
    ),
    "many_keys_one_tabbed_line": (
        lambda n: "!!a.b\n\t" + "\t".join(f"k{i}:v" for i in range(n // 8)) + " b@d:1\n",
        1 << 12,
    ),
    "many_args": (lambda n: "!!a.b " + " ".join(f"a{i}" for i in range(n // 6)) + "\n", 1 << 12),
    "many_actions": (lambda n: "!!a.b k:v\n" * (n // 10), 1 << 11),
    "multiline_value": (
        lambda n: "!!a.b\n    k:'\n" + '      it\'s a "line"\n' * (n // 20) + "    '\n",
        1 << 13,
    ),
    "many_errors": (lambda n: "!!a.b.c x\n" * (n // 10), 1 << 12),
}


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_4x_longer_text_costs_well_under_8x(shape: str, step: str) -> None:
    make, n = SHAPES[shape]
    ratio = growth(STEPS[step], make(n), make(4 * n), bound=8)
    assert ratio < 8, f"{step} on {shape}: 4x the text cost {ratio:.1f}x the time"


# The inputs of the issue, at a megabyte: each must cost about 16x its 64 KiB version.
MEGABYTE = 1 << 20
HUGE: dict[str, Callable[[int], str]] = {
    "unterminated_single_quotes": lambda n: "!!a.b k:" + "'" * n + "\n",
    "unterminated_double_quotes": lambda n: "!!a.b k:" + '"' * n + "\n",
    "quote_runs_in_a_block": lambda n: "!!a.b\n    k:" + "'''\"\"\"" * (n // 6) + "\n",
    "single_quoted_value": lambda n: "!!a.b k:'" + "v" * n + "'\n",
    "double_quoted_value": lambda n: '!!a.b k:"' + "v" * n + '"\n',
    "backslashes": lambda n: "!!a.b k:'" + "\\" * n + "'\n",
    "line_of_colons": lambda n: "!!a.b\n    " + ":" * n + "\n",
    "colons_at_column_0": lambda n: ":" * n + "\n",
}


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("shape", sorted(HUGE))
def test_a_megabyte_costs_about_16x_its_64k_version(shape: str, step: str) -> None:
    make = HUGE[shape]
    work = STEPS[step]
    small, large = make(MEGABYTE // 16), make(MEGABYTE)
    cost_small = statistics.median(_timed_once(work, small) for _ in range(3))
    cost_large = _timed_once(work, large)
    ratio = cost_large / max(cost_small, 1e-6)
    if ratio >= 32:
        ratio = growth(work, small, large, bound=32)
    assert ratio < 32, f"{step} on {shape}: 16x the text cost {ratio:.1f}x the time"


def _timed_once(work: Callable[[str], object], text: str) -> float:
    gc.disable()
    try:
        started = time.thread_time()
        work(text)
        return time.thread_time() - started
    finally:
        gc.enable()


# Pieces that stress a scanner: quotes, escapes, comment marks, openers, list commas.
ATOMS = st.sampled_from(
    [
        "'", '"', "'''", '"""', "\\", "\\'", '\\"', ":", " :", ": ", "//", "-/", "<!--", "-->",
        "!!", "!!a.b", ",", " ", "\t", "k:", "k:'", 'k:"', "x", "a b", "#", "<BR>", "\\\\n",
    ]
)  # fmt: skip
# Characters a key or a bare word may hold: a long run of them is what a scanner that
# retries at every column (the regex of issue 12) chokes on.
RUN_ATOMS = st.sampled_from(["x", "\\", "#", "!!", "-/", "<BR>", ",", ".", "/", "a_b"])
QUOTES = st.sampled_from(["'", '"', "'''", '"""'])
PIECES = st.lists(ATOMS, max_size=4).map("".join)
UNITS = st.one_of(
    st.lists(ATOMS, min_size=1, max_size=8).map("".join),
    st.lists(RUN_ATOMS, min_size=1, max_size=3).map("".join),
)
# A line that ends in a quote is where multi-line openers are looked for.
TAILS = st.one_of(PIECES, st.tuples(PIECES, QUOTES).map("".join))
# Where the repeated unit goes: along the action line, along one line of a block,
# one per block line, one per action, as the lines of a multi-line value, or in
# prose (which only the highlighter and the formatter read).
LAYOUTS: dict[str, Callable[[str, str, str, int], str]] = {
    "action_line": lambda head, unit, tail, k: f"!!a.b {head}{unit * k}{tail}\n",
    "block_line": lambda head, unit, tail, k: f"!!a.b\n    {head}{unit * k}{tail}\n",
    "block_lines": lambda head, unit, tail, k: (
        f"!!a.b\n    {head}\n" + f"    {unit}\n" * k + f"    {tail}\n"
    ),
    "actions": lambda head, unit, tail, k: f"!!a.b {head}{unit}{tail}\n" * k,
    "multiline_value": lambda head, unit, tail, k: (
        "!!a.b\n    k:'\n" + f"      {head}{unit}{tail}\n" * k + "    '\n"
    ),
    "prose": lambda head, unit, tail, k: f"{head}{unit * k}{tail}\n",
}
TEXTS = st.tuples(PIECES, UNITS, TAILS, st.sampled_from(sorted(LAYOUTS)))


def _check_growth(parts: tuple[str, str, str, str], size: int) -> None:
    head, unit, tail, layout = parts
    build = LAYOUTS[layout]
    # Repeat the unit so that the smaller text has about `size` characters.
    per_unit = len(build(head, unit, tail, 2)) - len(build(head, unit, tail, 1))
    k = max(1, size // per_unit)
    small, large = build(head, unit, tail, k), build(head, unit, tail, 4 * k)
    for step, work in STEPS.items():
        ratio = growth(work, small, large, bound=8)
        assert ratio < 8, f"{step} on {layout} of {parts[:3]!r}: 4x the text cost {ratio:.1f}x"


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(TEXTS)
def test_no_generated_text_grows_super_linearly(parts: tuple[str, str, str, str]) -> None:
    _check_growth(parts, size=2_000)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_no_generated_text_grows_super_linearly_soak(parts: tuple[str, str, str, str]) -> None:
    _check_growth(parts, size=8_000)
