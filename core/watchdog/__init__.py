"""The watchdog: a pool that fetches jobs from Redis, runs them under timeouts, reports back."""

from core.watchdog.pool import WatchDog, WatchDogSettings
from core.watchdog.processors import Outcome, Processors

__all__ = ["Outcome", "Processors", "WatchDog", "WatchDogSettings"]
