"""The request logs: every scored customer (prediction log) and who read whom (access log).

Requests hand their rows to `RequestLogWriter.put`, which appends them to a journal file before
queueing them; one writer thread inserts the queue in batches (every `flush_seconds` or
`batch_size` rows) and deletes the journal segments whose rows are committed. So:

- a graceful shutdown (`close`) writes everything queued;
- a killed worker loses nothing the operating system had accepted: its journal segments are
  replayed into the database by the next worker that starts (`replay_journals`), and rows
  carry an `entry_id` so a row already committed is never inserted twice;
- while the database is down, batches are kept and retried; the journal keeps growing on disk
  (at most `max_pending_rows` stay in memory; the rest wait in the journal for the replay).

Nothing here holds a customer id: rows carry the keyed hash (`customer_key`) only, and the
prediction log withholds the quasi-identifiers in `WITHHELD_FEATURES`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("churn.api")

# Quasi-identifiers kept out of the prediction log: with a pseudonym beside them, exact age,
# tenure in days and income band would single customers out. Segment and region stay (the
# monitoring views need them; each covers thousands of customers).
WITHHELD_FEATURES = ("age", "tenure_days", "income_band")

Rows = dict[str, list[dict[str, Any]]]  # table name -> rows


def new_entry_id() -> str:
    return uuid.uuid4().hex


class RequestLogWriter:
    """Journals, queues and writes log rows in the background.

    Args:
        write: inserts {table: rows} in one transaction, ignoring rows whose `entry_id` exists.
        flush_seconds: the longest a row waits in the queue.
        batch_size: rows per insert at most.
        journal_dir: where this process's journal segments go; None for no journal.
    """

    def __init__(
        self,
        write: Callable[[Rows], None],
        flush_seconds: float,
        batch_size: int,
        journal_dir: str | Path | None = None,
        max_pending_rows: int = 100_000,
    ):
        self._write = write
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._max_pending = max_pending_rows
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._journal_dir = Path(journal_dir) if journal_dir is not None else None
        self._segment = 0
        self._journal = self._open_segment() if self._journal_dir is not None else None
        self._closed_segments: list[Path] = []  # segments whose rows are all in the queue or pending
        self._overflowed = False  # rows were left to the journal alone: replay it when the database is back
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    # -- the journal ------------------------------------------------------------------------------
    def _segment_path(self, k: int) -> Path:
        return self._journal_dir / f"{os.getpid()}-{k:06d}.jsonl"

    def _open_segment(self) -> Any:
        self._journal_dir.mkdir(parents=True, exist_ok=True)
        self._segment += 1
        return open(self._segment_path(self._segment), "a", encoding="utf-8")

    def _rotate(self) -> None:
        """Start a new segment; the old one's rows are all queued (called under the lock)."""
        if self._journal is None:
            return
        self._journal.close()
        self._closed_segments.append(Path(self._journal.name))
        self._journal = self._open_segment()

    # -- producers ------------------------------------------------------------------------------------
    def put(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Journal the rows (one write) and queue them for the database."""
        if not rows:
            return
        for row in rows:
            row.setdefault("entry_id", new_entry_id())
        with self._lock:
            if self._journal is not None:
                self._journal.write(
                    "".join(json.dumps({"table": table, "row": row}, default=str) + "\n" for row in rows)
                )
                self._journal.flush()  # in the OS now: survives the process being killed
            for row in rows:
                self._queue.put((table, row))

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self._flush_seconds)
                while True:
                    if item is None:
                        stopping = True
                        break
                    self._take(item)
                    if len(self._pending) >= self._batch_size:
                        self._flush()
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            self._flush(rotate=True)
        if self._pending:
            logger.error(
                "request log: %d rows not written (database unavailable); they stay in the journal "
                "and are replayed when the server starts again",
                len(self._pending),
            )
        elif self._journal is not None:
            self._journal.close()
            Path(self._journal.name).unlink(missing_ok=True)

    def _take(self, item: tuple[str, dict[str, Any]]) -> None:
        if len(self._pending) >= self._max_pending:
            self._overflowed = True  # the database has been down long: the row waits in the journal only
            return
        self._pending.append(item)

    def _flush(self, rotate: bool = False) -> None:
        if rotate:
            with self._lock:
                self._rotate()
                while True:  # rows queued before the rotation belong to the closed segments
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._queue.put(None)
                        break
                    self._take(item)
        if not self._pending:
            self._drop_segments()
            return
        batch: Rows = {}
        for table, row in self._pending:
            batch.setdefault(table, []).append(row)
        try:
            self._write(batch)
        except Exception as exc:  # keep serving; retry the same rows on the next flush
            logger.warning("request log: write failed (%s); will retry", exc.__class__.__name__)
            return
        self.written += len(self._pending)
        self._pending = []
        if rotate:
            self._drop_segments()

    def _drop_segments(self) -> None:
        """Delete the closed segments, whose rows are committed; after an overflow, first insert
        their rows again (those already committed are skipped by their entry id)."""
        for path in self._closed_segments:
            if self._overflowed:
                try:
                    _write_segment(path, self._write, self._batch_size)
                except Exception as exc:
                    logger.warning(
                        "request log: journal replay failed (%s); will retry", exc.__class__.__name__
                    )
                    return
            path.unlink(missing_ok=True)
        self._closed_segments = []
        self._overflowed = False


def replay_journals(journal_dir: str | Path, write: Callable[[Rows], None], batch_size: int = 5000) -> int:
    """Insert the rows of journal segments left by processes that are gone, then delete them.

    Safe to run from several workers at once: a segment is claimed by renaming it first, and rows
    already committed are skipped by their `entry_id`. Returns the rows replayed.
    """
    directory = Path(journal_dir)
    if not directory.is_dir():
        return 0
    replayed = 0
    for path in sorted(directory.glob("*.jsonl")):
        pid = int(path.name.split("-", 1)[0])
        if pid == os.getpid() or _alive(pid):
            continue
        claimed = path.with_suffix(f".replaying-{os.getpid()}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue  # another worker took it
        replayed += _write_segment(claimed, write, batch_size)
        claimed.unlink()
    if replayed:
        logger.warning("request log: replayed %d rows left in the journal by a stopped worker", replayed)
    return replayed


def _write_segment(path: Path, write: Callable[[Rows], None], batch_size: int) -> int:
    """Insert a segment's rows in batches; returns how many there were."""
    batch: Rows = {}
    count = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a process killed mid-write
        batch.setdefault(entry["table"], []).append(entry["row"])
        count += 1
        if count % batch_size == 0:
            write(batch)
            batch = {}
    if batch:
        write(batch)
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
