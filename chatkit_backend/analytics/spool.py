"""The outage spool: an append-only JSON-lines file that holds accepted events while the database is away.

Several worker processes may append at once (an exclusive `flock` per append); a replay first
renames the file to a claimed name, so appends that come during a replay start a new file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Record = tuple[str, dict[str, Any]]  # (table name, row)
_DATETIME_FIELDS = ("client_timestamp", "received_at")


def _encode(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _decode(line: str) -> Record:
    table, row = json.loads(line)
    for field in _DATETIME_FIELDS:
        if row.get(field):
            row[field] = datetime.fromisoformat(row[field])
    return table, row


@contextmanager
def _locked(path: Path, *, blocking: bool = True) -> Iterator[Any]:
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Spool:
    """The spool file at `path`, with its claimed (being replayed) siblings."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def rejected_path(self) -> Path:
        """Where rows the database refuses for good are kept for the operator (never replayed)."""
        return self.path.with_name(self.path.name + ".rejected")

    def append(self, records: list[Record]) -> None:
        """Append and fsync; when this returns, the records survive a crash. Raises OSError."""
        _append_synced(self.path, records)

    def reject(self, records: list[Record]) -> None:
        """Keep `records`, which the database refuses whatever the retry, in the rejected file. Raises OSError."""
        _append_synced(self.rejected_path, records)

    def _claimed(self) -> list[Path]:
        return sorted(self.path.parent.glob(self.path.name + ".replaying-*"))

    def has_pending(self) -> bool:
        """True when there is anything to replay."""
        try:
            if self.path.stat().st_size > 0:
                return True
        except OSError:
            pass  # no spool file (or no folder): only claimed files can be pending
        return bool(self._claimed())

    def pending_records(self) -> int:
        """How many records wait in the spool and its claimed files (one per line)."""
        total = 0
        for path in (self.path, *self._claimed()):
            try:
                with open(path, "rb") as handle:
                    while block := handle.read(1 << 20):
                        total += block.count(b"\n")
            except OSError:
                continue  # no spool file, or a claimed one a replay just removed
        return total

    def replay(self, write: Callable[[list[Record]], None], chunk: int = 2000) -> int:
        """Hand every spooled record to `write` in chunks, then remove it; returns how many were handed on.

        `write` must be idempotent (it inserts by event key): a replay cut short is simply run again.
        """
        if not self.has_pending():
            return 0
        lock_path = self.path.with_name(self.path.name + ".lock")
        with _locked(lock_path, blocking=False) as replay_lock:
            if replay_lock is None:
                return 0  # another process is replaying
            self._claim()
            total = 0
            for claimed in self._claimed():
                total += self._replay_file(claimed, write, chunk)
                claimed.unlink()
            return total

    def _claim(self) -> None:
        if not self.path.exists():
            return
        with _locked(self.path) as handle:
            if os.fstat(handle.fileno()).st_size:
                os.rename(self.path, self.path.with_name(f"{self.path.name}.replaying-{datetime.now():%Y%m%d%H%M%S%f}"))

    @staticmethod
    def _replay_file(path: Path, write: Callable[[list[Record]], None], chunk: int) -> int:
        batch: list[Record] = []
        total = 0
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                try:
                    batch.append(_decode(line))
                except (ValueError, TypeError, KeyError):
                    # Only a crash mid-append leaves a torn line, and that append was never acknowledged.
                    log.warning("spool %s line %d is not a record; skipped", path.name, number)
                    continue
                if len(batch) >= chunk:
                    write(batch)
                    total += len(batch)
                    batch = []
        if batch:
            write(batch)
            total += len(batch)
        return total


def _append_synced(path: Path, records: list[Record]) -> None:
    lines = "".join(json.dumps(record, default=_encode, separators=(",", ":")) + "\n" for record in records)
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with _locked(path) as handle:
            # A replay may have renamed the spool while we waited for the lock: write to the new one.
            if os.fstat(handle.fileno()).st_ino != _inode(path):
                continue
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
            break
    if created:
        _fsync_directory(path.parent)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
