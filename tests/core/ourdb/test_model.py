"""Hypothesis state machine: any sequence of set, delete and reopen matches a dict model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from core.ourdb import DatabaseFullError, InvalidIdError, OurDB, OurDBConfig, RecordNotFoundError

payloads = st.binary(max_size=300)


class OurDBMachine(RuleBasedStateMachine):
    """The model maps id -> versions, newest first; deleted ids leave the model."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="ourdb-model-"))
        self.generation = 0
        self.model: dict[int, list[bytes]] = {}
        self.next_id = 1
        self.db: OurDB | None = None

    @initialize(
        keysize=st.sampled_from([2, 3, 4, 6]),
        incremental=st.booleans(),
    )
    def open_db(self, keysize: int, incremental: bool) -> None:
        # Rollover needs keysize 6; the small keysizes get one big file.
        file_size = 200 if keysize == 6 else 1 << 16
        self.config = OurDBConfig(
            record_nr_max=64, keysize=keysize, incremental=incremental, file_size=file_size
        )
        self.db = OurDB(self.path, self.config)

    @property
    def path(self) -> Path:
        return self.root / f"db{self.generation}"

    @property
    def live(self) -> OurDB:
        assert self.db is not None
        return self.db

    @precondition(lambda self: self.config.incremental and self.next_id < 64)
    @rule(data=payloads)
    def insert(self, data: bytes) -> None:
        assert self.live.set(data) == self.next_id
        self.model[self.next_id] = [data]
        self.next_id += 1

    @precondition(lambda self: not self.config.incremental)
    @rule(record_id=st.integers(0, 63), data=payloads)
    def put(self, record_id: int, data: bytes) -> None:
        assert self.live.set(data, id=record_id) == record_id
        self.model.setdefault(record_id, []).insert(0, data)

    @precondition(lambda self: bool(self.model))
    @rule(pick=st.integers(0, 10_000), data=payloads)
    def update(self, pick: int, data: bytes) -> None:
        record_id = sorted(self.model)[pick % len(self.model)]
        self.live.set(data, id=record_id)
        self.model[record_id].insert(0, data)

    @rule(record_id=st.integers(0, 70), erase=st.booleans())
    def delete(self, record_id: int, erase: bool) -> None:
        if record_id in self.model:
            self.live.delete(record_id, erase_history=erase)
            del self.model[record_id]
        else:
            with pytest.raises((RecordNotFoundError, InvalidIdError)):
                self.live.delete(record_id)

    @precondition(lambda self: self.config.incremental)
    @rule(record_id=st.integers(0, 63), data=payloads)
    def update_missing_is_refused(self, record_id: int, data: bytes) -> None:
        if record_id not in self.model:
            with pytest.raises(InvalidIdError):
                self.live.set(data, id=record_id)

    @rule(batch=st.lists(payloads, min_size=1, max_size=5))
    def set_many(self, batch: list[bytes]) -> None:
        if self.config.incremental:
            if self.next_id + len(batch) > 64:
                return
            ids = self.live.set_many(batch)
            assert ids == list(range(self.next_id, self.next_id + len(batch)))
            for record_id, data in zip(ids, batch, strict=True):
                self.model[record_id] = [data]
            self.next_id += len(batch)
        else:
            items = [(data, n % 64) for n, data in enumerate(batch)]
            self.live.set_many(items)
            for data, record_id in items:
                self.model.setdefault(record_id, []).insert(0, data)

    @rule()
    def reopen(self) -> None:
        self.live.close()
        self.db = OurDB(self.path)

    @rule()
    def crash_and_reopen(self) -> None:
        """Copy the files while open (what a SIGKILL leaves), then open the copy."""
        old = self.path
        self.generation += 1
        shutil.copytree(old, self.path)
        self.live.close()
        shutil.rmtree(old)
        self.db = OurDB(self.path, self.config)

    @invariant()
    def matches_model(self) -> None:
        if self.db is None:
            return
        assert list(self.db) == sorted(self.model)
        for record_id, versions in self.model.items():
            assert self.db.get(record_id) == versions[0]
            assert self.db.get_history(record_id, 100) == versions[:100]
        if self.config.incremental and self.next_id < 64:
            assert self.db.next_id() == self.next_id
        elif self.config.incremental:
            with pytest.raises(DatabaseFullError, match="lookup table is full"):
                self.db.next_id()

    def teardown(self) -> None:
        if self.db is not None:
            self.db.close()
        shutil.rmtree(self.root, ignore_errors=True)


OurDBMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ourdb_matches_dict_model = OurDBMachine.TestCase


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ourdb_matches_dict_model_long() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        OurDBMachine,
        settings=settings(max_examples=300, stateful_step_count=50, deadline=None),
    )
