"""`heroagent ourdb`: inspect and verify an OurDB directory, repair a damaged one, compact one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

# OurDB and rich load in the commands that use them: other commands start without them.
if TYPE_CHECKING:
    from core.ourdb import OurDB
    from core.ourdb.format import Location

app = typer.Typer(
    help=(
        "Inspect an OurDB database: info, verify, get, history, dump (these never write); "
        "repair a damaged one; compact one to give back the space of deleted records."
    ),
    no_args_is_help=True,
)


@contextmanager
def _open(path: str) -> Iterator[OurDB]:
    from core.ourdb import OurDB, OurDBError

    try:
        db = OurDB(path, readonly=True)
    except (OurDBError, OSError) as exc:
        # One line, never a traceback: this ends up in terminals and service logs.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        yield db
    finally:
        db.close()


def _show(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.hex(" ")


@app.command()
def info(path: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Layout, counters and data files of the database at PATH."""
    from core.ourdb.format import data_file_name

    with _open(path) as db:
        files = db.data_files()
        facts: dict[str, Any] = {
            "path": os.path.abspath(path),
            "keysize": db.layout.keysize,
            "incremental": db.layout.incremental,
            "record_nr_max": db.layout.record_nr_max,
            "live_ids": sum(1 for _ in db),
            "next_id": db.writer_state.next_id if db.layout.incremental else None,
            "data_files": {data_file_name(n): size for n, size in files.items()},
            "append_file": data_file_name(db.writer_state.cur_file),
            "append_offset": db.writer_state.cur_end,
            "warnings": db.warnings,
        }
    if as_json:
        typer.echo(json.dumps(facts, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"OurDB {facts['path']}", show_header=False)
    for key, value in facts.items():
        if key != "path":
            table.add_row(key, str(value))
    Console().print(table)


@dataclass
class _Report:
    live_ids: int = 0
    records: int = 0
    bytes: int = 0
    damaged: list[str] = field(default_factory=list)


@app.command()
def verify(path: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Read every version of every live record; exit 1 on any torn or damaged record."""
    from core.ourdb import CorruptDatabaseError, OurDB, OurDBError
    from core.ourdb.quarantine import notes

    report = _Report()
    try:
        db = OurDB(path, readonly=True)
    except CorruptDatabaseError as exc:
        # The open refused damage: that is the finding, not a failure of verify.
        report.damaged.append(str(exc))
        db = None
    except (OurDBError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if db is not None:
        with db:
            report.damaged.extend(db.warnings)
            for record_id in db:
                report.live_ids += 1
                loc: Location | None = db.location(record_id)
                while loc is not None and not loc.is_null:
                    try:
                        payload, header = db.read_at(loc, record_id)
                    except OurDBError as exc:
                        report.damaged.append(str(exc))
                        break
                    report.records += 1
                    report.bytes += len(payload)
                    loc = header.prev
    kept = notes(path)
    if as_json:
        typer.echo(json.dumps({**report.__dict__, "quarantine": kept}, indent=1))
    else:
        typer.echo(
            f"{report.live_ids} live ids, {report.records} records "
            f"({report.bytes} payload bytes), {len(report.damaged)} problems"
        )
        for line in report.damaged:
            typer.echo(f"DAMAGED: {line}")
        if kept:
            where = os.path.join(path, "quarantine")
            typer.echo(f"note: {len(kept)} earlier cuts are kept in {where} (see the .note files)")
    if report.damaged:
        raise typer.Exit(1)


@app.command()
def repair(
    path: str,
    record_nr_max: int | None = typer.Option(
        None, "--record-nr-max", help="Layout to assume if ourdb.meta is beyond reading."
    ),
    keysize: int | None = typer.Option(None, "--keysize", help="With --record-nr-max."),
    key_value: bool = typer.Option(False, "--key-value", help="With --record-nr-max."),
) -> None:
    """Keep every intact record; quarantine the rest; leave a database that verifies clean.

    What cannot be kept goes to PATH/quarantine with a note of where it came from. Stop
    every writer first (repair takes the writer lock).
    """
    from core.ourdb import OurDBConfig, OurDBError
    from core.ourdb.repair import repair as run_repair

    config = None
    if record_nr_max is not None:
        config = OurDBConfig(
            record_nr_max=record_nr_max, keysize=keysize, incremental=not key_value
        )
    try:
        report = run_repair(path, config, progress=typer.echo)
    except (OurDBError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for item in report.quarantined:
        typer.echo(f"quarantined: {item}")
    for line in report.problems_after:
        typer.echo(f"DAMAGED: {line}")
    if report.problems_after:
        raise typer.Exit(1)


@app.command()
def compact(path: str) -> None:
    """Rewrite PATH with only its live records (every version of each): gives back space.

    Deleted and purged records keep their disk until this rewrite. Ids and histories
    stay the same. Stop every writer first (it takes the writer lock); the new files are
    written beside PATH, verified, then swapped in.
    """
    from core.ourdb import OurDBError
    from core.ourdb.compact import compact as run_compact

    try:
        run_compact(path, progress=typer.echo)
    except (OurDBError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def get(path: str, record_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Print the newest version of ID."""
    from core.ourdb import OurDBError

    with _open(path) as db:
        try:
            typer.echo(_show(db.get(record_id)))
        except OurDBError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc


@app.command()
def history(
    path: str,
    record_id: int = typer.Argument(..., metavar="ID"),
    depth: int = typer.Option(10, "--depth", "-n", help="Most versions to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print up to --depth versions of ID, newest first."""
    from core.ourdb import OurDBError

    with _open(path) as db:
        try:
            versions = db.get_history(record_id, depth)
        except OurDBError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps([_show(v) for v in versions], indent=1))
        return
    for n, version in enumerate(versions):
        typer.echo(f"[{n}] {_show(version)}")


@app.command()
def dump(
    path: str,
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Print every live id with its location and newest payload."""
    from core.ourdb import OurDBError
    from core.ourdb.format import data_file_name

    with _open(path) as db:
        for record_id in db:
            loc = db.location(record_id)
            try:
                text = _show(db.get(record_id))
            except OurDBError as exc:
                text = f"<{exc}>"
            if as_json:
                row = {"id": record_id, "file": loc.file_nr, "offset": loc.position, "data": text}
                typer.echo(json.dumps(row))
            else:
                typer.echo(f"{record_id}\t{data_file_name(loc.file_nr)}:{loc.position}\t{text}")
