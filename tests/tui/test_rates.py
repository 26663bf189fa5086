"""EndRates with injected timestamps: window, ramp-up, buckets, pruning."""

from __future__ import annotations

import pytest

from heroagent_tui.rates import EndRates

T0 = 1_000.0


def test_steady_drain_shows_its_rate() -> None:
    rates = EndRates(started=T0, window=5.0)
    # 200 jobs a second for 10 s, one end every 5 ms.
    for i in range(2_000):
        rates.add("default/bulk", T0 + i * 0.005)
    assert rates.rate("default/bulk", T0 + 10.0) == pytest.approx(200.0, rel=0.01)


def test_only_the_window_counts_and_an_idle_queue_falls_to_zero() -> None:
    rates = EndRates(started=T0, window=5.0)
    for i in range(100):
        rates.add("q", T0 + i * 0.01)  # 100 ends in the first second
    for i in range(50):
        rates.add("q", T0 + 8.0 + i * 0.01)  # 50 more at 8 s
    assert rates.rate("q", T0 + 9.0) == pytest.approx(50 / 5.0)
    assert rates.rate("q", T0 + 13.0) == pytest.approx(50 / 5.0)
    assert rates.rate("q", T0 + 13.6) == 0.0


def test_first_seconds_divide_by_the_time_observed() -> None:
    rates = EndRates(started=T0, window=5.0)
    for i in range(400):
        rates.add("q", T0 + i * 0.005)  # 200/s for 2 s
    # Not 400 / 5: nothing before `started` is known, so the span is the 2 s seen.
    assert rates.rate("q", T0 + 2.0) == pytest.approx(200.0, rel=0.01)
    # A burst right after the start is spread over at least a second, not shown as 10 000/s.
    fresh = EndRates(started=T0, window=5.0)
    fresh.add("q", T0 + 0.01, count=10)
    assert fresh.rate("q", T0 + 0.01) == pytest.approx(10.0)


def test_queues_are_apart_and_unknown_ones_are_zero() -> None:
    rates = EndRates(started=T0, window=5.0)
    rates.add("a/x", T0 + 6.0, count=10)
    rates.add("b/y", T0 + 6.0, count=30)
    assert rates.rate("a/x", T0 + 7.0) == pytest.approx(2.0)
    assert rates.rate("b/y", T0 + 7.0) == pytest.approx(6.0)
    assert rates.rate("c/z", T0 + 7.0) == 0.0
    assert sorted(rates.queues()) == ["a/x", "b/y"]


def test_ends_after_now_are_not_counted_yet() -> None:
    rates = EndRates(started=T0, window=5.0)
    rates.add("q", T0 + 6.0, count=5)
    rates.add("q", T0 + 8.0, count=5)
    assert rates.rate("q", T0 + 7.0) == pytest.approx(1.0)


def test_memory_is_bounded_by_window_over_resolution() -> None:
    rates = EndRates(started=T0, window=5.0, resolution=0.1)
    for i in range(100_000):
        rates.add("q", T0 + i * 0.001)  # 1000/s for 100 s
    assert len(rates._buckets["q"]) <= 51
    assert rates.rate("q", T0 + 100.0) == pytest.approx(1_000.0, rel=0.03)
