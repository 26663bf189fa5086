"""Parse rate of HeroScript: one 1,000-action playbook, and 10k one-action jobs.

Run ``python -m bench.heroscript`` (``--quick`` for a smoke run). The target is
at least 50k small actions parsed per second on one core.
"""

from __future__ import annotations

import argparse

from bench.timing import best
from core.heroscript import parse, validate

TARGET_PER_SECOND = 50_000


def playbook_text(actions: int) -> str:
    """Return a playbook mixing inline params, blocks, lists and multi-line values."""
    chunks = []
    for i in range(actions):
        if i % 4 == 0:
            chunks.append(f"// step {i}\n!!fake.return_success message:'step {i}' n:{i}\n")
        elif i % 4 == 1:
            chunks.append(
                f"!!file.write path:out/{i}.txt\n    content:'line {i}'\n    append:false\n"
            )
        elif i % 4 == 2:
            chunks.append(f"!!vm.define name:vm{i} cpu:4\n    tags: a, b, 'c d'\n    memory:8GB\n")
        else:
            chunks.append(f"!!doc.add\n    text:'\n        para {i}\n        more\n    '\n")
    return "".join(chunks)


def job_texts(jobs: int) -> list[str]:
    """Return ``jobs`` small scripts of one action each, as a queue would hold them."""
    return [f"!!fake.return_success message:'job {i}' n:{i}\n" for i in range(jobs)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print actions per second."""
    parser = argparse.ArgumentParser(prog="python -m bench.heroscript", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller, single run")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else 5
    jobs = 1_000 if args.quick else 10_000

    text = playbook_text(1_000)
    assert len(parse(text)) == 1_000
    seconds = best(runs, lambda: parse(text))
    print(f"1,000-action playbook: {seconds * 1000:.1f} ms, {1_000 / seconds:,.0f} actions/s")

    seconds = best(runs, lambda: validate(text))
    print(f"  validate (syntax) : {seconds * 1000:.1f} ms, {1_000 / seconds:,.0f} actions/s")

    texts = job_texts(jobs)

    def parse_jobs() -> None:
        for one in texts:
            parse(one)

    seconds = best(runs, parse_jobs)
    rate = jobs / seconds
    print(f"{jobs:,} one-action jobs : {seconds * 1000:.1f} ms, {rate:,.0f} jobs/s")
    verdict = "met" if rate >= TARGET_PER_SECOND else "NOT met"
    print(f"target {TARGET_PER_SECOND:,} small actions/s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
