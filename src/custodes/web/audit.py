"""Who saw which evidence, batched: every way evidence reaches a screen is recorded without one ledger line
per frame.

Each request that shows evidence (a queue or search page listing items, an item page, a thumbnail or contact
sheet, bytes of a video, the timeline) is counted in memory under (viewer, what, item). At most every
``FLUSH_S`` seconds, when ``MAX_KEYS`` distinct views are waiting, and when the server stops, the counts go
to the ledger as one signed ``views`` event per viewer: for each item what was shown, how many times, from
when to when, and for media the bytes served. A server killed with -9 loses at most the last ``FLUSH_S``
seconds of view records; nothing else.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

FLUSH_S = 10.0
MAX_KEYS = 500


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ViewAudit:
    def __init__(self, ledger: Any, flush_s: float = FLUSH_S) -> None:
        self.ledger = ledger
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._views: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._oldest = 0.0
        self._stop = threading.Event()
        self._due = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, actor: str, what: str, subject: str | None, nbytes: int = 0, detail: str = "") -> None:
        key = (actor, what, subject or "")
        with self._lock:
            v = self._views.get(key)
            if v is None:
                if not self._views:
                    self._oldest = time.monotonic()
                v = self._views[key] = {"what": what, "subject": subject, "count": 0, "first": _now(),
                                        "bytes": 0, "details": []}
            v["count"] += 1
            v["last"] = _now()
            v["bytes"] += nbytes
            if detail and detail not in v["details"] and len(v["details"]) < 50:
                v["details"].append(detail)
            due = len(self._views) >= MAX_KEYS or time.monotonic() - self._oldest >= self.flush_s
        self._ensure_thread()
        if due:  # the writer thread signs and syncs it: the request that filled the batch does not wait for it
            self._due.set()

    def flush(self) -> int:
        """Write what is waiting; returns the number of events appended."""
        with self._lock:
            views, self._views = self._views, {}
        by_actor: dict[str, list[dict[str, Any]]] = {}
        for (actor, _, _), v in views.items():
            by_actor.setdefault(actor, []).append({k: x for k, x in v.items() if x or k == "subject"})
        for actor, rows in by_actor.items():
            self.ledger.append(actor, "views", None, {"views": rows})
        return len(by_actor)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="custodes-view-audit", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._due.wait(self.flush_s)
            self._due.clear()
            if not self._stop.is_set():
                self.flush()

    def close(self) -> None:
        self._stop.set()
        self._due.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self.flush()
