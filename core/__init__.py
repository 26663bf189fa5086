"""HeroAgent's engine: Redis queues, OurDB history, the watchdog and the optional services."""

__version__ = "0.1.0"
