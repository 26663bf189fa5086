"""Messages screens send up to the app, which owns navigation between modes."""

from __future__ import annotations

from textual.message import Message


class JobsFilterRequested(Message):
    """Show the Jobs screen with this filter (a queue's `enter`, a palette command)."""

    def __init__(self, query: str) -> None:
        super().__init__()
        self.query = query


class JobOpenRequested(Message):
    """Open one job's detail."""

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id


class SubmitRequested(Message):
    """Open the Submit screen with this text and queue filled in."""

    def __init__(self, params: str = "", circle: str = "", topic: str = "") -> None:
        super().__init__()
        self.params = params
        self.circle = circle
        self.topic = topic
