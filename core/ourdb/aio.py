"""AsyncOurDB: OurDB for asyncio, with group commit through one writer thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Iterable
from types import TracebackType

from core.ourdb.config import OurDBConfig
from core.ourdb.db import OurDB, SetItem, to_request
from core.ourdb.errors import OurDBError, ReadOnlyError
from core.ourdb.planner import DeleteRequest, Request, SetRequest

_Result = list[int] | BaseException
# Each call of a batch: its requests, its answer, and the answer once its records are
# written before their sync (None: the caller waits for the sync alone).
_Call = tuple[list[Request], "asyncio.Future[list[int]]", "asyncio.Future[list[int]] | None"]
_Batch = list[_Call]


class AsyncOurDB:
    """Async facade; file I/O never runs on the event loop.

    Writes from every coroutine are queued and handed to a single writer thread. A write
    that finds the writer idle is handed over at once: a lone writer never waits for
    company, not even for the rest of the event-loop iteration. Writes that find it busy
    gather, all those of one iteration and all that arrive while a sync is in progress,
    and share one write and one fsync (group commit). Each call stays all-or-nothing and
    gets its own result or error. Reads run in the default executor. A cancelled write
    may still be committed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: OurDBConfig | None = None,
        *,
        readonly: bool = False,
        min_next_id: int | None = None,
    ) -> None:
        """Remember how to open; the database opens in `open()` or `async with`.

        `min_next_id` is passed to `OurDB`: the first new id is at least this.
        """
        self._args = (os.fspath(path), config, readonly)
        self._min_next_id = min_next_id
        self._db: OurDB | None = None
        self._queue: queue.SimpleQueue[tuple[_Batch, asyncio.AbstractEventLoop] | None]
        self._queue = queue.SimpleQueue()
        self._batch: _Batch = []
        # Batches handed to the writer and not yet answered (touched on the loop only).
        self._inflight = 0
        self._thread: threading.Thread | None = None

    @property
    def db(self) -> OurDB:
        """The underlying OurDB (for reads of metadata such as `stats`)."""
        if self._db is None:
            raise ReadOnlyError(f"database {self._args[0]} is not open")
        return self._db

    async def open(self) -> AsyncOurDB:
        """Open the database (recovery runs in a thread) and start the writer."""
        path, config, readonly = self._args
        self._db = await asyncio.to_thread(
            OurDB, path, config, readonly=readonly, min_next_id=self._min_next_id
        )
        self._thread = threading.Thread(target=self._writer, name=f"ourdb-writer:{path}")
        self._thread.daemon = True
        self._thread.start()
        return self

    async def __aenter__(self) -> AsyncOurDB:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def set(self, data: bytes, id: int | None = None) -> int:
        """See `OurDB.set`; durable on return in SyncMode.ALWAYS."""
        return (await self._submit([SetRequest(bytes(data), id)]))[0]

    async def set_many(self, items: Iterable[SetItem]) -> list[int]:
        """See `OurDB.set_many`."""
        return await self.start_set_many(items)

    def start_set_many(
        self, items: Iterable[SetItem], *, restore: bool = False
    ) -> asyncio.Future[list[int]]:
        """`set_many`, queued for the writer before this returns; the future is its answer.

        For a caller with more to do while the write and its sync run. As for any write,
        an idle writer takes it at once, a busy one with the others of its batch. With
        `restore`, an item's id below the next one that lost its record takes it again
        (see SetRequest).
        """
        reqs: list[Request] = [
            SetRequest(it) if type(it) is bytes else to_request(it, restore) for it in items
        ]
        return self._start(reqs)

    def start_set_many_early(
        self, items: Iterable[SetItem]
    ) -> tuple[asyncio.Future[list[int]], asyncio.Future[list[int]]]:
        """`start_set_many`, with a first answer before the sync: (written, durable).

        `written` has the ids once the records and their journal frame are written,
        before the sync: from then on a killed process loses nothing, a crash of the
        machine still may. For a caller that can start on the ids while the sync runs
        and answers its own caller only on `durable`. A call refused (or a failed write)
        gets its error on both.
        """
        reqs: list[Request] = [
            SetRequest(it) if type(it) is bytes else to_request(it) for it in items
        ]
        written: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        return written, self._start(reqs, written)

    async def delete(self, id: int, *, erase_history: bool = True) -> None:
        """See `OurDB.delete`."""
        await self._submit([DeleteRequest(id, erase_history)])

    async def delete_many(self, ids: Iterable[int], *, erase_history: bool = True) -> None:
        """See `OurDB.delete_many`: one sync for all, all or nothing."""
        reqs: list[Request] = [DeleteRequest(record_id, erase_history) for record_id in ids]
        if reqs:
            await self._submit(reqs)

    async def get(self, id: int) -> bytes:
        """See `OurDB.get`."""
        return await asyncio.to_thread(self.db.get, id)

    async def get_history(self, id: int, depth: int) -> list[bytes]:
        """See `OurDB.get_history`."""
        return await asyncio.to_thread(self.db.get_history, id, depth)

    async def next_id(self) -> int:
        """See `OurDB.next_id` (in memory, no I/O)."""
        return self.db.next_id()

    async def reserve_ids_above(self, last_used: int) -> int:
        """See `OurDB.reserve_ids_above`; returns the next id.

        Writes already queued may still get ids at or below `last_used`: call this
        before the first write (or pass `min_next_id` to the constructor).
        """
        return await asyncio.to_thread(self.db.reserve_ids_above, last_used)

    async def ids(self) -> list[int]:
        """Live ids, ascending."""
        return await asyncio.to_thread(lambda: list(self.db))

    async def close(self) -> None:
        """Finish queued writes, stop the writer thread and close the database."""
        if self._db is None:
            return
        if self._batch:
            self._kick(asyncio.get_running_loop())
        self._queue.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        db, self._db = self._db, None
        await asyncio.to_thread(db.close)

    async def _submit(self, reqs: list[Request]) -> list[int]:
        return await self._start(reqs)

    def _start(
        self, reqs: list[Request], written: asyncio.Future[list[int]] | None = None
    ) -> asyncio.Future[list[int]]:
        loop = asyncio.get_running_loop()
        self.db  # noqa: B018 - raises when closed
        fut: asyncio.Future[list[int]] = loop.create_future()
        if not self._inflight and not self._batch:
            # Nothing is being written: a wait for company would only delay this one.
            self._hand([(reqs, fut, written)], loop)
            return fut
        if not self._batch:
            # Everything queued before this callback runs travels in one batch.
            loop.call_soon(self._kick, loop)
        self._batch.append((reqs, fut, written))
        return fut

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self._hand(batch, loop)

    def _hand(self, batch: _Batch, loop: asyncio.AbstractEventLoop) -> None:
        self._inflight += 1
        self._queue.put((batch, loop))

    def _answer(self, batch: _Batch, results: list[_Result]) -> None:
        """On the loop: one hop back per batch, however many calls it holds."""
        self._inflight -= 1
        for (_, fut, written), result in zip(batch, results, strict=True):
            if written is not None and not written.done():
                _resolve(written, result)  # nothing was written, or the write failed
            _resolve(fut, result)

    @staticmethod
    def _answer_written(batch: _Batch, results: list[_Result]) -> None:
        """On the loop: the early answers of the calls that asked for one."""
        for (_, _, written), result in zip(batch, results, strict=True):
            if written is not None and not written.done():
                _resolve(written, result)

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            stop = False
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                items.append(more)
            self._commit(items)
            if stop:
                return

    def _commit(self, items: list[tuple[_Batch, asyncio.AbstractEventLoop]]) -> None:
        calls = [reqs for batch, _ in items for reqs, _, _ in batch]
        early = any(written is not None for batch, _ in items for _, _, written in batch)

        def written(results: list[list[int] | OurDBError]) -> None:
            # Called inside the commit: a loop closed meanwhile must not fail the write.
            start = 0
            for batch, loop in items:
                end = start + len(batch)
                answers: list[_Result] = list(results[start:end])
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._answer_written, batch, answers)
                start = end

        db = self._db
        results: list[_Result]
        if db is None:
            results = [ReadOnlyError("database is closed")] * len(calls)
        else:
            try:
                results = list(db.commit(calls, written if early else None))
            except (OurDBError, OSError) as exc:
                results = [exc] * len(calls)
        start = 0
        for batch, loop in items:
            end = start + len(batch)
            loop.call_soon_threadsafe(self._answer, batch, results[start:end])
            start = end


def _resolve(fut: asyncio.Future[list[int]], result: _Result) -> None:
    if fut.cancelled():
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)
