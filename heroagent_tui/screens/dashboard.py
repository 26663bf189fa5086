"""Dashboard: services, the Redis server, job throughput and latency, workers, queue depths."""

from __future__ import annotations

from collections import deque
from statistics import median

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from core.api import RedisView
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.widgets.services_table import ServicesTable
from heroagent_tui.widgets.view_bar import ViewBar

BUCKET_SECONDS = 5
BUCKETS = 60  # five minutes
LATENCY_SAMPLES = 1000
WORKER_COLUMNS = ("worker", "state", "host", "slots", "busy", "jobs", "heartbeat")
REDIS_EVERY = 5  # seconds between INFO reads: a gauge has no event, so the clock reads it


class DashboardScreen(EngineScreen):
    """The first screen: is everything up, and is work flowing."""

    TITLE = "Dashboard"

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar("dashboard")
        with Vertical(id="dashboard"):
            yield Static("Services", classes="section-title")
            yield ServicesTable(self.ctx.fmt, id="services")
            with Horizontal(id="dash-row"):
                with Vertical(id="redis-box", classes="box"):
                    yield Static("Redis", classes="section-title")
                    yield Static("not connected", id="redis-info")
                with Vertical(id="flow-box", classes="box"):
                    yield Static("Throughput, last 5 minutes", classes="section-title")
                    yield Sparkline([0.0] * BUCKETS, id="throughput")
                    yield Static("", id="flow-info")
            yield Static("Workers", classes="section-title")
            yield DataTable(id="workers", cursor_type="none")
            yield Static("Queue depths", classes="section-title")
            yield DataTable(id="depths", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self._buckets: deque[float] = deque([0.0] * BUCKETS, maxlen=BUCKETS)
        self._bucket_start = self.ctx.fmt.now()
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._ticks = 0
        depths = self.query_one("#depths", DataTable)
        for name in ("queue", "waiting", "active", "done", "error"):
            depths.add_column(name, key=name)
        workers = self.query_one("#workers", DataTable)
        for name in WORKER_COLUMNS:
            workers.add_column(name, key=name)
        self.set_interval(1.0, self._tick)

    def load_snapshot(self) -> None:
        self._show_services()
        self._load_workers()
        self._load_redis()
        self._load_queues()
        self._show_flow()

    def _show_services(self) -> None:
        table = self.query_one(ServicesTable)
        table.show(self.ctx.api.services(), self.ctx.fmt.now())

    def _tick(self) -> None:
        # A clock: uptimes move, the throughput window slides, and the Redis gauge is read.
        self._ticks += 1
        now = self.ctx.fmt.now()
        while now - self._bucket_start >= BUCKET_SECONDS:
            self._buckets.append(0.0)
            self._bucket_start += BUCKET_SECONDS
        self.draw_later("services", self._show_services)
        self.draw_later("flow", self._show_flow)
        # A lost worker sends no event: only its heartbeat stops, so the clock looks.
        self.draw_later("workers", self._load_workers)
        if self._ticks % REDIS_EVERY == 0:
            self.draw_later("redis", self._load_redis)

    @work(exclusive=True, group="redis", exit_on_error=False)
    async def _load_redis(self) -> None:
        try:
            info = await self.ctx.api.redis_info()
        except Exception as exc:  # the server may be down or still starting
            self.query_one("#redis-info", Static).update(f"not available: {exc}")
            return
        self._show_redis(info)

    def _show_redis(self, info: RedisView) -> None:
        fmt = self.ctx.fmt
        text = (
            f"version  {info.version}\n"
            f"clients  {fmt.gauge(info.clients)}\n"
            f"memory   {fmt.size(info.memory_bytes)}\n"
            f"ops/s    {fmt.gauge(info.ops_per_sec)}"
        )
        if info.primary:
            text += (
                f"\nprimary  {fmt.address(info.primary)}\n"
                f"replicas {info.replicas}   failovers {info.failovers}"
            )
        self.query_one("#redis-info", Static).update(text)

    @work(exclusive=True, group="workers", exit_on_error=False)
    async def _load_workers(self) -> None:
        try:
            workers = await self.ctx.api.workers()
        except Exception:  # the jobs service may not be running yet, or the server is down
            return
        fmt = self.ctx.fmt
        error = Style(color=self.app.current_theme.error, bold=True)
        table = self.query_one("#workers", DataTable)
        seen = set()
        for w in workers:
            style = error if w.lost else ""
            age = fmt.duration(w.heartbeat_age) if w.last_heartbeat else ""
            cells = (
                fmt.worker(w.worker),
                Text(w.state, style=style),
                fmt.host(w.host),
                str(w.slots),
                str(w.busy),
                str(w.running),
                Text(age, style=style),
            )
            seen.add(w.worker)
            if w.worker not in table.rows:
                table.add_row(*cells, key=w.worker)
            else:
                for column, value in zip(WORKER_COLUMNS, cells, strict=True):
                    table.update_cell(w.worker, column, value)
        for key in [k for k in table.rows if k.value not in seen]:
            table.remove_row(key)

    @work(exclusive=True, group="queues", exit_on_error=False)
    async def _load_queues(self) -> None:
        try:
            queues = await self.ctx.api.queues()
        except Exception:  # the jobs service may not be running yet
            return
        table = self.query_one("#depths", DataTable)
        seen = set()
        added = False
        for q in queues:
            cells = (q.name, str(q.waiting), str(q.active), str(q.done), str(q.error))
            seen.add(q.name)
            if q.name not in table.rows:
                table.add_row(*cells, key=q.name)
                added = True
            else:
                for column, value in zip(
                    ("waiting", "active", "done", "error"), cells[1:], strict=True
                ):
                    table.update_cell(q.name, column, value)
        for key in [k for k in table.rows if k.value not in seen]:
            table.remove_row(key)
        if added:
            # A queue that appears later goes in its place by name, not at the bottom.
            table.sort("queue")

    def _show_flow(self) -> None:
        self.query_one("#throughput", Sparkline).data = list(self._buckets)
        recent = self._buckets[-1] / BUCKET_SECONDS
        minute = sum(list(self._buckets)[-12:]) / 60
        lat = sorted(self._latencies)
        p50 = self.ctx.fmt.duration(median(lat)) if lat else "–"
        p99 = self.ctx.fmt.duration(lat[int(len(lat) * 0.99)]) if lat else "–"
        self.query_one("#flow-info", Static).update(
            f"jobs/s now {self.ctx.fmt.metric(recent)}   last minute {self.ctx.fmt.metric(minute)}"
            f"\nlatency p50 {p50}   p99 {p99}"
        )

    def on_engine_batch(self, batch: EngineBatch) -> None:
        if batch.services:
            self._show_services()
            if "redis" in batch.services or "jobs" in batch.services:
                self._load_redis()
                self.throttled("queues", 1.0, self._load_queues)
        if batch.purged:
            # Purged jobs leave the queues' ended counts.
            self.debounced("queues-settle", 1.0, self._settle_queues)
        if batch.jobs:
            self._buckets[-1] += batch.ended
            self._latencies.extend(batch.latencies)
            self.draw_later("flow", self._show_flow)
            # Depths come from Redis and the history index: at most one read a second while
            # jobs flow, and one more when the burst is over (the index trails the events).
            self.draw_later("queues", self._load_queues, every=1.0)
            self.debounced("queues-settle", 1.0, self._settle_queues)

    def _settle_queues(self) -> None:
        self.draw_later("queues-settled", self._load_queues, every=0.0)
