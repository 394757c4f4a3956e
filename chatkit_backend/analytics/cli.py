"""`flask analytics ...`: export events and errors, prune by retention, replay the outage spool."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import click
from flask import current_app
from flask.cli import AppGroup

from chatkit_backend.analytics import queries
from chatkit_backend.analytics.ingest import get_store
from chatkit_backend.db import get_db


class _Time(click.ParamType):
    name = "iso-time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        try:
            return queries.parse_time(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time", param, ctx)


# A cell starting with one of these is a live formula in Excel, LibreOffice and Google Sheets (OWASP
# "CSV Injection"); the page controls most exported strings, so such cells get a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """`value` as a CSV cell a spreadsheet shows as text: dicts and lists as JSON, formula starts quoted."""
    if isinstance(value, dict | list):
        value = json.dumps(value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _write(rows: Any, fmt: str, out: TextIO, writer: list[Any]) -> None:
    for row in rows:
        if fmt == "jsonl":
            out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
            continue
        if not writer:
            writer.append(csv.DictWriter(out, fieldnames=list(row)))
            writer[0].writeheader()
        writer[0].writerow({k: spreadsheet_cell(v) for k, v in row.items()})


def export(table: str, fmt: str, since: datetime | None, until: datetime | None, output: str) -> None:
    out = sys.stdout if output == "-" else open(output, "w", newline="")  # noqa: SIM115 - closed below
    try:
        with get_db().engine.connect() as connection:
            total = queries.count_rows(connection, table, since, until)
            rows = queries.export_rows(connection, table, since, until)
            with click.progressbar(rows, length=total, label=f"exporting {table}", file=sys.stderr) as bar:
                _write(bar, fmt, out, [])
    finally:
        if out is not sys.stdout:
            out.close()
    click.echo(f"exported {total} {table}", err=True)


analytics_cli = AppGroup("analytics", help="Export, prune and replay analytics data.")


@analytics_cli.command("export", help="Export events or error reports as JSON lines or CSV.")
@click.option("--table", type=click.Choice(sorted(queries.EXPORT_TABLES)), default="events", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--since", type=_Time(), help="Only rows received at or after this time (UTC if no offset).")
@click.option("--until", type=_Time(), help="Only rows received before this time.")
@click.option("--output", "-o", default="-", show_default=True, help="File to write; - for standard output.")
def export_command(table: str, fmt: str, since: datetime | None, until: datetime | None, output: str) -> None:
    export(table, fmt, since, until, output)


@analytics_cli.command(
    "prune",
    help="Delete events, error reports, error groups, expired sessions, and conversations (items, attachments, "
    "turns) older than the retention.",
)
@click.option("--days", type=click.IntRange(min=1), help="Keep this many days (default: the retention setting).")
def prune_command(days: int | None) -> None:
    from chatkit_backend.selfhosted.uploads import blob_store

    settings = current_app.config["SETTINGS"]
    days = days or settings.analytics_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    counts, attachment_ids = get_db().write(lambda connection: queries.prune(connection, cutoff))
    blob_store(settings, get_db()).delete(attachment_ids)  # bytes in a folder go once their records have
    click.echo("pruned " + ", ".join(f"{count} {name}" for name, count in counts.items()) + f" (kept {days} days)")


@analytics_cli.command("replay-spool", help="Move events spooled during a database outage into the database.")
def replay_command() -> None:
    store = get_store()
    count = store.replay_spool()
    click.echo(f"replayed {count} spooled rows from {store.spool.path}")
