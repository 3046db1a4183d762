"""Where per-video work runs: a local process pool (the default) or a Ray cluster.

An engine takes ``(key, payload)`` items and a function, runs the function on each
payload in workers that were set up once (models loaded once per worker), and hands
each ``(key, result)`` back to the caller *in the calling process*, which alone
writes to the case. A result therefore lands at most once per key per call, whatever
happens to workers; a worker that dies is replaced and its item retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

OnResult = Callable[[str, Any, int], None]  # (key, result, attempts)


RETRIES = 2  # a video whose worker died is sent again at most this many times


class EngineError(Exception):
    pass


def retry_or_fail(key: str, payload: Any, attempts: int, why: Exception, queue: list[tuple[str, Any]],
                  on_failure: Callable[[str, str, int], None]) -> None:
    """After a worker died on ``key``: send it again (first in line), or give up and say why."""
    if attempts <= RETRIES:
        queue.insert(0, (key, payload))
    else:
        on_failure(key, f"worker died {attempts} times on it: {why}", attempts)


class Engine(Protocol):
    name: str
    address: str
    workers: int

    def run(self, items: list[tuple[str, Any]], fn: Callable[[Any], Any], init: Callable[[], None],
            on_result: OnResult, on_failure: Callable[[str, str, int], None]) -> None: ...


def make_engine(name: str, workers: int = 1, address: str | None = None) -> Engine:
    if name == "local":
        from custodes.engine.local import LocalEngine

        return LocalEngine(workers)
    if name == "ray":
        from custodes.engine.ray_engine import RayEngine

        return RayEngine(workers, address or "auto")
    raise EngineError(f"unknown engine {name!r}: use local or ray")
