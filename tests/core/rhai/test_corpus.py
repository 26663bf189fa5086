"""The Rhai conformance corpus, run by its own checker against `core.rhai.eval`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# The conformance cases (from the Rhai project's own tests) and their checker, kept with
# the tests so that every checkout runs them.
# The spec's conformance checker and its corpus, as published (not edited here).
SPEC = REPO / "tests" / "data" / "vendor" / "rhai"


def test_visible_corpus_passes() -> None:
    out = subprocess.run(
        [sys.executable, str(SPEC / "check.py"), "core.rhai:eval", str(REPO),
         "--corpus", str(SPEC / "visible.json")],
        capture_output=True, text=True, timeout=600, cwd=REPO, check=False,
    )  # fmt: skip
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(
        r"rhai corpus: (\d+) cases, (\d+) pass, (\d+) fail, (\d+) error-mismatch, (\d+) timeout",
        last,
    )
    assert m, out.stdout[-2000:] + out.stderr[-2000:]
    cases, passed, _, _, timeouts = map(int, m.groups())
    assert timeouts == 0, out.stdout[-3000:]
    assert passed >= 0.9 * cases, out.stdout[-3000:]
