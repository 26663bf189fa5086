"""How volatile values (times, pids, ports, sizes) are shown; tests swap in a fixed one."""

from __future__ import annotations

import time
from collections.abc import Callable


class DisplayFormat:
    """Formats values that change from run to run; screens never format these themselves."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def now(self) -> float:
        """The clock the screens use."""
        return self.clock()

    def address(self, address: str) -> str:
        """A service address as it is."""
        return address

    def path(self, path: str) -> str:
        """A file system path, or a text that may hold one, as it is."""
        return path

    def worker(self, name: str) -> str:
        """A worker's id (host:pid:nonce)."""
        return name

    def host(self, name: str) -> str:
        """A machine's host name."""
        return name

    def gauge(self, value: float) -> str:
        """A live server gauge (clients, ops/s) that no test can pin."""
        return self.metric(value)

    def progress(self, fraction: float | None, width: int = 5) -> str:
        """A job's progress as a bar and a percentage (`███░░  60%`), or nothing."""
        if fraction is None:
            return ""
        filled = round(fraction * width)
        return f"{'█' * filled}{'░' * (width - filled)} {round(fraction * 100):3d}%"

    def pid(self, pid: int | None) -> str:
        """A process id, or nothing."""
        return "" if pid is None else str(pid)

    def uptime(self, seconds: float | None) -> str:
        """h:mm:ss, or nothing when not running."""
        if seconds is None:
            return ""
        s = int(seconds)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

    def timestamp(self, ts: float) -> str:
        """Local wall-clock time of an event."""
        if not ts:
            return ""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))

    def clock_time(self, ts: float) -> str:
        """Only the time of day, for log lines."""
        return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else ""

    def duration(self, seconds: float | None) -> str:
        """A short duration."""
        if seconds is None:
            return ""
        if seconds < 1:
            return f"{seconds * 1000:.0f} ms"
        return f"{seconds:.2f} s"

    def countdown(self, ts: float) -> str:
        """Time left until `ts`: in 9s, in 1m 05s, in 2h 03m; due once it has come."""
        left = round(ts - self.now())
        if left <= 0:
            return "due"
        minutes, seconds = divmod(left, 60)
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"in {hours}h {minutes:02d}m"
        return f"in {minutes}m {seconds:02d}s" if minutes else f"in {seconds}s"

    def size(self, n: int) -> str:
        """Bytes in a human unit."""
        value = float(n)
        for unit in ("B", "KiB", "MiB", "GiB"):
            if value < 1024 or unit == "GiB":
                return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
            value /= 1024
        return f"{n} B"

    def metric(self, value: float) -> str:
        """A live number (clients, ops/s, rate)."""
        return f"{value:,.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")
