"""`heroagent ourdb`: inspect and verify an OurDB directory (read-only)."""

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
    help="Inspect an OurDB database: info, verify, get, history, dump. Never writes.",
    no_args_is_help=True,
)


@contextmanager
def _open(path: str) -> Iterator[OurDB]:
    from core.ourdb import OurDB, OurDBError

    try:
        db = OurDB(path, readonly=True)
    except OurDBError as exc:
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
    from core.ourdb import OurDBError

    report = _Report()
    with _open(path) as db:
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
    if as_json:
        typer.echo(json.dumps(report.__dict__, indent=1))
    else:
        typer.echo(
            f"{report.live_ids} live ids, {report.records} records "
            f"({report.bytes} payload bytes), {len(report.damaged)} problems"
        )
        for line in report.damaged:
            typer.echo(f"DAMAGED: {line}")
    if report.damaged:
        raise typer.Exit(1)


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
