"""The workspace strip's audio waveform: ``GET /api/items/{sha256}/peaks``, peak loudness per bucket.

Decoded on the first request for an item (``custodes.media.waveform``) and cached under ``reports/peaks``, so
every later one is a file read; ``waveform.precompute`` fills the same cache from a batch step. The page asks
for it after the strip's own data, so a slow decode never holds up the workspace. An encrypted case keeps no
plaintext derivative on disk: its waveforms are kept in this process's memory instead (a few kilobytes each).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from custodes.media import waveform
from custodes.store.case import Case

MEMORY_ITEMS = 512  # waveforms an encrypted case's app holds in memory (each at most ~16 KB of JSON)


def install(app: Any, case: Case, require: Callable[..., Any], known_object: Callable[[str], Any],
            record_view: Callable[[str, str, str | None], None]) -> None:
    router = APIRouter()
    memory: OrderedDict[str, bytes] = OrderedDict()
    # one decode per item at a time: two reviewers opening the same long file wait for one decode, not two
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def body(sha256: str) -> bytes:
        path = waveform.cache_path(case, sha256)
        if case.keys is None and path.is_file():
            return path.read_bytes()
        if sha256 in memory:
            memory.move_to_end(sha256)
            return memory[sha256]
        with guard:
            lock = locks.setdefault(sha256, threading.Lock())
        with lock:
            if case.keys is None and path.is_file():  # decoded while this request waited
                return path.read_bytes()
            if sha256 in memory:
                return memory[sha256]
            raw = waveform.dumps(waveform.for_object(case, sha256))
            if case.keys is not None:
                memory[sha256] = raw
                while len(memory) > MEMORY_ITEMS:
                    memory.popitem(last=False)
        with guard:
            locks.pop(sha256, None)
        return raw

    @router.get("/api/items/{sha256}/peaks")
    def api_peaks(sha256: str, v: Any = Depends(require)) -> Response:
        """Peak loudness of the item's sound: ``{"version", "bucket_s", "peaks": [0-255, ...]}``, or no peaks
        and the sentence why (no sound, sound that cannot be decoded)."""
        known_object(sha256)
        record_view(v.name, "waveform", sha256)
        raw = body(sha256)
        if waveform.cached(raw) is None:  # a cache file of an older format or a damaged one: decode again
            waveform.cache_path(case, sha256).unlink(missing_ok=True)
            raw = body(sha256)
        # the cached bytes as they are: compact already, and a derivative of evidence, so never kept by caches
        return Response(raw, media_type="application/json", headers={"Cache-Control": "no-store"})

    app.include_router(router)
