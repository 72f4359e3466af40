"""The prediction log: every scored customer, written in the background so responses never wait.

Requests put rows on a queue; one writer thread inserts them in batches (every `flush_seconds`
or `batch_size` rows). `close()` drains the queue before returning, so a graceful shutdown loses
nothing. If the database is unreachable, the batch is kept and retried on the next flush.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("churn.api")


class PredictionLogWriter:
    def __init__(self, write: Callable[[list[dict[str, Any]]], None], flush_seconds: float, batch_size: int):
        self._write = write
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._pending: list[dict[str, Any]] = []
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def put(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._queue.put(row)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self._flush_seconds)
                while True:
                    if item is None:
                        stopping = True
                        break
                    self._pending.append(item)
                    if len(self._pending) >= self._batch_size:
                        self._flush()
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            self._flush()
        if self._pending:  # the database stayed down through the shutdown
            logger.error("prediction log: %d rows could not be written", len(self._pending))

    def _flush(self) -> None:
        if not self._pending:
            return
        try:
            self._write(self._pending)
        except Exception as exc:  # keep serving; retry the same rows on the next flush
            logger.warning("prediction log: write failed (%s); will retry", exc.__class__.__name__)
            return
        self.written += len(self._pending)
        self._pending = []
