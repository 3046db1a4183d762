"""The default engine: this machine, a spawned process pool (or this process for one worker)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from custodes.engine import OnResult, retry_or_fail


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers are spawned, never forked: a fork copies the locks of OpenCV's, onnxruntime's and
    OpenMP's thread pools while other threads hold them, and the child can hang forever."""
    return multiprocessing.get_context("spawn")


class LocalEngine:
    name = "local"
    address = ""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def run(self, items: list[tuple[str, Any]], fn: Callable[[Any], Any], init: Callable[[], None],
            on_result: OnResult, on_failure: Callable[[str, str, int], None]) -> None:
        if self.workers <= 1:
            init()
            for key, payload in items:
                on_result(key, fn(payload), 1)
            return
        queue = list(items)
        attempts: dict[str, int] = {}
        while queue:
            # a pool whose worker was killed is broken for good: start a new one for what is left
            with ProcessPoolExecutor(max_workers=self.workers, initializer=init, mp_context=worker_context()) as ex:
                running: dict[Future[Any], tuple[str, Any]] = {}
                broken = False
                while (queue and not broken) or running:
                    while queue and not broken and len(running) < self.workers * 2:
                        key, payload = queue.pop(0)
                        attempts[key] = attempts.get(key, 0) + 1
                        running[ex.submit(fn, payload)] = (key, payload)
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        key, payload = running.pop(fut)
                        try:
                            res = fut.result()
                        except BrokenProcessPool as exc:  # a worker died (OOM killer, kill -9)
                            broken = True
                            retry_or_fail(key, payload, attempts[key], exc, queue, on_failure)
                            continue
                        except Exception as exc:
                            on_failure(key, f"worker failed: {exc}", attempts[key])
                            continue
                        on_result(key, res, attempts[key])
