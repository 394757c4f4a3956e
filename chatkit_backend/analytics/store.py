"""Durable storage of accepted events: a group commit per process, with the spool when the database is away.

A request hands its rows to `EventStore.write` and waits; one committer thread per process
(`db.GroupCommitter`) drains the queue, commits everything waiting in one transaction and wakes
the requests. A 2xx is
only sent after that commit, or after the rows are fsync'd to the spool.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, case
from sqlalchemy.exc import DataError, IntegrityError

from chatkit_backend.analytics.error_groups import top_frame
from chatkit_backend.analytics.models import ERRORS, EVENTS, GROUPS, LEGACY_SCOPE
from chatkit_backend.analytics.spool import Record, Spool
from chatkit_backend.db import Database, GroupCommitter, call_blocking, dialect_insert
from chatkit_backend.errors import ApiError

log = logging.getLogger(__name__)

STORED, SPOOLED, UNAVAILABLE = "stored", "spooled", "unavailable"
WAIT_SECONDS = 25.0  # below gunicorn's 30 s worker timeout
# Rows per group commit: bounds a commit's peak memory (figures: docs/BENCHMARKS.md).
MAX_GROUP_ROWS = 1000
IDLE_SECONDS = 2.0  # the committer thread ends after this long with nothing to do
REPLAY_INTERVAL_SECONDS = 30.0
SPOOL_CHECK_SECONDS = 1.0  # after stored batches, look for another worker's spool at most this often


def write_records(connection: Connection, records: list[Record]) -> int:
    """Insert events and error reports, skipping (scope, event key) pairs already stored; update error groups.

    Returns how many rows were new. Safe to run again with the same records (replays, retries).
    """
    events = [row for table, row in records if table == "events"]
    errors = [row for table, row in records if table == "errors"]
    for row in (*events, *errors):
        # A row spooled before scopes existed: its key is unique in the legacy scope, as it was then.
        row.setdefault("scope", LEGACY_SCOPE)
    inserted = 0
    if events:
        statement = dialect_insert(connection, EVENTS).on_conflict_do_nothing(index_elements=["scope", "event_key"])
        inserted += connection.execute(statement, events).rowcount
    if errors:
        statement = (
            dialect_insert(connection, ERRORS)
            .on_conflict_do_nothing(index_elements=["scope", "event_key"])
            .returning(ERRORS.c.scope, ERRORS.c.event_key)
        )
        new_keys = {tuple(key) for key in connection.execute(statement, errors)}
        new_errors = [row for row in errors if (row["scope"], row["event_key"]) in new_keys]
        _count_in_groups(connection, new_errors)
        inserted += len(new_errors)
    return inserted


def _count_in_groups(connection: Connection, errors: list[dict[str, Any]]) -> None:
    groups: dict[str, dict[str, Any]] = {}
    for row in errors:
        group = groups.get(row["fingerprint"])
        if group is None:
            groups[row["fingerprint"]] = {
                "fingerprint": row["fingerprint"],
                "message": row["message"],
                "top_frame": top_frame(row["stack"]),
                "component": row["component"],
                "level": row["level"],
                "count": 1,
                "first_seen": row["received_at"],
                "last_seen": row["received_at"],
            }
        else:
            group["count"] += 1
            group["first_seen"] = min(group["first_seen"], row["received_at"])
            group["last_seen"] = max(group["last_seen"], row["received_at"])
    if not groups:
        return
    statement = dialect_insert(connection, GROUPS)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={
            "count": GROUPS.c.count + new.count,
            "first_seen": case((new.first_seen < GROUPS.c.first_seen, new.first_seen), else_=GROUPS.c.first_seen),
            "last_seen": case((new.last_seen > GROUPS.c.last_seen, new.last_seen), else_=GROUPS.c.last_seen),
        },
    )
    connection.execute(statement, list(groups.values()))


class EventStore:
    """Writes accepted rows durably. One per app; its committer thread starts lazily in each worker process."""

    def __init__(self, database: Database, spool: Spool) -> None:
        self.database = database
        self.spool = spool
        self._next_replay = 0.0
        self._next_spool_check = 0.0
        # The database's group commit; a failed commit spools instead of raising.
        self._committer: GroupCommitter[Record] = database.committer(
            "analytics-committer",
            self._commit,
            max_items=MAX_GROUP_ROWS,
            wait_seconds=WAIT_SECONDS,
            idle_seconds=IDLE_SECONDS,
            on_start=lambda: self.replay_spool(quiet=True),
            after_batch=self._after_batch,
            when_idle=self._replay_when_due,
        )

    def write(self, records: list[Record]) -> str:
        """Store `records`; returns "stored" or "spooled" once they are durable, raises a 503 ApiError otherwise."""
        try:
            outcome = self._committer.submit(records)
        except TimeoutError:
            outcome = UNAVAILABLE
        except (DataError, IntegrityError):
            # This request holds a row the database refuses: store the others one by one and keep
            # the refused ones in the rejected file for the operator (its answer stays a 2xx).
            if self.database.is_sqlite:
                call_blocking(self._write_one_by_one, records)
            else:
                self._write_one_by_one(records)
            outcome = STORED
        if outcome == UNAVAILABLE:
            raise ApiError(
                "analytics_unavailable",
                "Analytics storage is unavailable; retry later with the same event ids.",
                503,
                headers={"Retry-After": "30"},
            )
        return outcome

    def start(self) -> None:
        """Start the committer now (it replays the spool first) if it is not running in this process."""
        self._committer.start()

    def _after_batch(self, outcome: str) -> None:
        # A stored batch means the database is back: replay, but check the spool (a stat and a
        # directory scan) at most once a second, not after every commit.
        now = time.monotonic()
        if outcome == STORED and now >= self._next_spool_check:
            self._next_spool_check = now + SPOOL_CHECK_SECONDS
            self._replay_when_due()

    def _commit(self, records: list[Record]) -> str:
        try:
            self._write(records)
            return STORED
        except (DataError, IntegrityError):
            raise  # a row the database refuses, not an outage: the committer retries each request alone
        except Exception as error:  # noqa: BLE001 - whatever stops the commit, the spool takes the rows
            log.warning("analytics commit failed (%s); spooling %d rows", type(error).__name__, len(records))
        try:
            call_blocking(self.spool.append, records)  # its fsync, like SQLite, blocks inside C
        except OSError as error:
            log.error("analytics spool %s unwritable (%s); %d rows refused", self.spool.path, error, len(records))
            return UNAVAILABLE
        self._next_replay = time.monotonic() + 1.0
        return SPOOLED

    def _replay_when_due(self) -> bool:
        """Replay the spool when a retry is due; True while it still holds rows."""
        if time.monotonic() < self._next_replay:
            return True
        if not self.spool.has_pending():
            return False
        return self.replay_spool(quiet=True) < 0

    def replay_spool(self, *, quiet: bool = False) -> int:
        """Move spooled rows into the database; returns how many, or -1 when the database is still away."""
        try:
            count = self.spool.replay(self._write_replayed)
        except Exception as error:
            self._next_replay = time.monotonic() + REPLAY_INTERVAL_SECONDS
            if not quiet:
                raise
            log.warning("analytics spool replay failed (%s); next try in %.0f s", type(error).__name__, 30.0)
            return -1
        if count:
            log.info("analytics spool replayed: %d rows", count)
        return count

    def _write_replayed(self, records: list[Record]) -> None:
        try:
            self._write(records)
        except (DataError, IntegrityError):
            # Not an outage: the database refuses a row, and would on every retry. Store the rows one
            # by one and keep the refused ones aside, so they cannot hold back the rest forever.
            self._write_one_by_one(records)

    def _write_one_by_one(self, records: list[Record]) -> None:
        rejected = []
        for record in records:
            try:
                self._write([record])
            except (DataError, IntegrityError):
                rejected.append(record)
        if rejected:
            self.spool.reject(rejected)
            log.error(
                "analytics: the database refused %d rows; kept in %s",
                len(rejected),
                self.spool.rejected_path,
            )

    def _write(self, records: list[Record]) -> None:
        self.database.write(lambda connection: write_records(connection, records))
