"""The default engine: this machine, a spawned process pool (or this process for one worker)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from custodes.engine import OnResult, retry_or_fail


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers are spawned, never forked: a fork copies the locks of OpenCV's, onnxruntime's and
    OpenMP's thread pools while other threads hold them, and the child can hang forever."""
    return multiprocessing.get_context("spawn")


PARENT_CHECK_S = 1.0


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            os._exit(1)


def init_worker(parent: int, init: Callable[[], None]) -> None:
    """Pool initializer: ``init``, and a watchdog that ends this worker when the process that started it
    is gone. A pool's workers outlive a parent killed by the OOM killer or ``kill -9`` (they wait on a
    queue that nobody closes) and would hold their models' memory until the machine restarts. Polled,
    not ``prctl(PR_SET_PDEATHSIG)``, so that it works on a Mac too.

    ``parent`` is the pool owner's pid as the owner gave it: a worker still starting when its parent was
    killed has already been adopted by another process, and would otherwise watch that one for ever."""
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="exit-with-parent").start()
    init()


def _nothing() -> None:
    pass


def worker_pool(workers: int, init: Callable[[], None] = _nothing) -> ProcessPoolExecutor:
    """Spawned workers that each run ``init`` once and end with their parent."""
    return ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(os.getpid(), init),
                               mp_context=worker_context())


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
            with worker_pool(self.workers, init) as ex:
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
