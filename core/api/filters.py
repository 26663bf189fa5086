"""JobFilter: what a listing of the job history narrows by, passed whole down to the index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.events import JobStateChanged

STATUSES = ("new", "scheduled", "active", "done", "error")


@dataclass(frozen=True)
class JobFilter:
    """What to list; None means any. Built by the TUI's filter bar, the HTTP query, the CLI."""

    status: str | None = None
    circle: str | None = None
    topic: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None
    # True: only dead letters (ended in error after their last allowed attempt).
    dead: bool | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is unknown; use one of {', '.join(STATUSES)}")

    @classmethod
    def parse(cls, query: str) -> JobFilter:
        """Read `status:error topic:x circle:y queue:c/t free text`; the rest is free text."""
        fields: dict[str, str] = {}
        words = []
        for word in query.split():
            key, sep, value = word.partition(":")
            if sep and key in ("status", "circle", "topic", "queue") and value:
                if key == "queue" and "/" in value:
                    fields["circle"], fields["topic"] = value.split("/", 1)
                elif key != "queue":
                    fields[key] = value
            else:
                words.append(word)
        return cls(
            status=fields.get("status"),
            circle=fields.get("circle"),
            topic=fields.get("topic"),
            text=" ".join(words) or None,
        )

    def matches(self, event: JobStateChanged) -> bool:
        """Whether a live event belongs in a filtered list (free text cannot be known)."""
        return (
            self.text is None
            and self.since is None
            and self.until is None
            and self.dead is None
            and self.status in (None, event.status)
            and self.circle in (None, event.circle)
            and self.topic in (None, event.topic)
        )
