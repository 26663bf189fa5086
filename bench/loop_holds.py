"""What holds an event loop: its callbacks that run long, and the code they were in meanwhile.

A whole-run profile says where the loop's CPU goes; a key waits on the one callback
running when it arrives, so what matters for key latency is the callbacks that hold the
loop for tens of milliseconds at a time. `LoopHolds` times every callback the loop runs
(`asyncio.Handle._run`) and, from a sampling thread, records the stack of the loop's
thread whenever the current callback has run longer than `threshold`: the report sums
those samples by the frames of our own code, so it names what holds, not what is busy.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

OWN = ("/heroagent_tui/", "/core/", "/bench/")
LIBRARIES = ("/textual/", "/rich/", "/redis/", "/asyncio/")


def _name(frame: FrameType) -> str:
    short = frame.f_code.co_filename.rsplit("/", 2)
    return f"{short[-2]}/{short[-1]}:{frame.f_code.co_name}"


def _where(frame: FrameType | None) -> tuple[str, str]:
    """The innermost frame of our own code, and the innermost three frames over all."""
    inner: list[str] = []
    own = ""
    while frame is not None and not own:
        path = frame.f_code.co_filename
        if len(inner) < 3 and any(part in path for part in OWN + LIBRARIES):
            inner.append(_name(frame))
        # Not the runner's frames (bench.tui's main, this module's wrapper): every stack has them.
        runner = path == __file__ or frame.f_code.co_name in ("main", "<module>")
        if any(part in path for part in OWN) and not runner:
            own = _name(frame)
        frame = frame.f_back
    return own or "(no own frame)", " < ".join(inner)


# Tasks that run someone else's callable: named by what they run (Textual's timers and
# workers), else every timer's hold reads as one owner.
RUNNERS = {"Timer._run_timer": "_callback", "Worker._run": "_work"}


def _owner(handle: asyncio.Handle) -> str:
    """The coroutine a task step runs, or the callback's name; call before it runs."""
    callback: Any = handle._callback
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro: Any = task.get_coro()
        name = getattr(coro, "__qualname__", repr(task))
        inner = RUNNERS.get(name)
        frame = getattr(coro, "cr_frame", None)
        if inner is not None and frame is not None:
            runs = getattr(frame.f_locals.get("self"), inner, None)
            runs = getattr(runs, "func", runs)  # a functools.partial
            if runs is not None:
                return f"{name}({getattr(runs, '__qualname__', type(runs).__name__)})"
        # A named task (the engine's supervised services): by its name too.
        label = task.get_name()
        return name if label.startswith("Task-") else f"{name}[{label}]"
    return getattr(callback, "__qualname__", repr(callback))


class LoopHolds:
    """Times the loop's callbacks while entered; `report()` lists the long ones."""

    def __init__(self, threshold: float = 0.02, interval: float = 0.002) -> None:
        self.threshold = threshold
        self.interval = interval
        self.holds: list[tuple[float, str]] = []
        """(seconds, owner) of each callback over the threshold."""
        self.cpu: list[tuple[float, str]] = []
        """(CPU seconds of the loop's thread, owner) of the same callbacks."""
        self.samples: Counter[str] = Counter()
        """Samples by the innermost frame of our own code."""
        self.inner: Counter[str] = Counter()
        """Samples by the innermost frames over all."""
        self.callbacks = 0
        self.collections: list[tuple[int, float]] = []
        """(generation, seconds) of each garbage collection on the loop's thread."""
        self._collecting = 0.0
        self._started: float | None = None
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._original = asyncio.Handle._run
        self._sampler = threading.Thread(target=self._sample, name="loop-holds", daemon=True)

    def __enter__(self) -> LoopHolds:
        original = self._original
        holds = self

        loop_thread = self._loop_thread

        def timed(handle: asyncio.Handle) -> None:
            if threading.get_ident() != loop_thread:
                # Another thread's loop (the engine's, beside the app): not the one timed.
                original(handle)
                return
            owner = _owner(handle)
            started, cpu = time.perf_counter(), time.thread_time()
            holds._started = started
            try:
                original(handle)
            finally:
                holds._started = None
                holds.callbacks += 1
                took = time.perf_counter() - started
                if took >= holds.threshold:
                    holds.holds.append((took, owner))
                    holds.cpu.append((time.thread_time() - cpu, owner))

        asyncio.Handle._run = timed  # type: ignore[method-assign]
        gc.callbacks.append(self._collected)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.Handle._run = self._original  # type: ignore[method-assign]
        gc.callbacks.remove(self._collected)
        self._stop.set()
        self._sampler.join()

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        # A collection stops every thread's Python code; the loop's is the one a key waits on.
        if threading.get_ident() != self._loop_thread:
            return
        if phase == "start":
            self._collecting = time.perf_counter()
        else:
            self.collections.append((info["generation"], time.perf_counter() - self._collecting))

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            started = self._started
            if started is None or time.perf_counter() - started < self.threshold:
                continue
            own, inner = _where(sys._current_frames().get(self._loop_thread))
            self.samples[own] += 1
            self.inner[inner] += 1

    def report(self, top: int = 15) -> str:
        """The long callbacks by owner, then the stacks sampled while they ran."""
        by_owner: Counter[str] = Counter()
        longest: dict[str, float] = {}
        for took, owner in self.holds:
            by_owner[owner] += 1
            longest[owner] = max(longest.get(owner, 0.0), took)
        lines = [
            f"{len(self.holds)} of {self.callbacks:,} callbacks held the loop "
            f"{self.threshold * 1000:.0f} ms or more"
        ]
        most_cpu: dict[str, float] = {}
        for cpu, owner in self.cpu:
            most_cpu[owner] = max(most_cpu.get(owner, 0.0), cpu)
        for owner, count in by_owner.most_common(top):
            lines.append(
                f"  {count:5d}×  longest {longest[owner] * 1000:6.0f} ms "
                f"(most CPU {most_cpu.get(owner, 0.0) * 1000:5.0f} ms)  {owner}"
            )
        for generation in (0, 1, 2):
            took = [t for g, t in self.collections if g == generation]
            if took:
                lines.append(
                    f"  gc generation {generation}: {len(took)} collections, "
                    f"{sum(took) * 1000:.0f} ms in all, longest {max(took) * 1000:.0f} ms"
                )
        total = sum(self.samples.values()) or 1
        lines.append(f"meanwhile, in ({total} samples, every {self.interval * 1000:.0f} ms):")
        for where, count in self.samples.most_common(top):
            lines.append(f"  {100 * count / total:5.1f}%  {where}")
        lines.append("innermost frames:")
        for where, count in self.inner.most_common(top):
            lines.append(f"  {100 * count / total:5.1f}%  {where}")
        return "\n".join(lines)
