"""Ray engine: one actor per worker, models loaded once per actor, one video per task.

``custodes triage CASE --engine ray --address HOST:PORT --workers N``. The driver
(this process) keeps the queue, sends each worker one video at a time and writes
every result to the case itself, so results land once per video even when a
worker dies: the dead actor is replaced by a fresh one and its video sent again (up to
``engine.RETRIES`` times, then the video is reported as failed with the reason). Workers
must see the case's object store at the same path (a shared filesystem); an
encrypted case's derived keys travel to them with each task, never the passphrase.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from custodes.engine import EngineError, OnResult, retry_or_fail


class _Worker:
    """Runs inside a Ray actor process."""

    def __init__(self, init: Callable[[], None]) -> None:
        init()
        self.ident = f"{socket.gethostname()}:{os.getpid()}"

    def run(self, fn: Callable[[Any], Any], payload: Any) -> tuple[str, Any]:
        return self.ident, fn(payload)


class RayEngine:
    name = "ray"

    def __init__(self, workers: int, address: str) -> None:
        self.workers = workers
        self.address = address

    def _check_reachable(self) -> None:
        """Fail in seconds, not after Ray's minutes of retries, when nothing listens at the address."""
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit():
            return  # "auto", "ray://…": left to Ray
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
        except OSError as exc:
            raise EngineError(f"cannot connect to the Ray cluster at {self.address}: {exc}") from exc

    def run(self, items: list[tuple[str, Any]], fn: Callable[[Any], Any], init: Callable[[], None],
            on_result: OnResult, on_failure: Callable[[str, str, int], None]) -> None:
        try:
            import ray
            from ray.exceptions import RayActorError, RayTaskError
        except ImportError as exc:
            raise EngineError("the Ray engine needs Ray: pip install 'custodes[ray]'") from exc
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._check_reachable()
        # fault-injection switches reach the workers; nothing else of this environment does (no passphrase)
        env_vars = {k: v for k, v in os.environ.items() if k.startswith("CUSTODES_FAULT_")}
        try:
            ray.init(address=self.address, log_to_driver=False, ignore_reinit_error=True,
                     logging_level=logging.ERROR, include_dashboard=False,
                     runtime_env={"env_vars": env_vars} if env_vars else None)
        except Exception as exc:  # ConnectionError, RuntimeError …
            raise EngineError(f"cannot connect to the Ray cluster at {self.address}: {exc}") from exc
        # a dead worker is replaced by a fresh actor (not restarted in place): calls sent to an actor that
        # is restarting can fail too, which would count attempts that never ran
        worker_cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Worker)
        actors: list[Any] = [worker_cls.remote(init) for _ in range(self.workers)]
        idle = list(actors)
        queue = list(items)
        attempts: dict[str, int] = {}
        running: dict[Any, tuple[str, Any, Any]] = {}
        try:
            while queue or running:
                while queue and idle:
                    key, payload = queue.pop(0)
                    actor = idle.pop()
                    attempts[key] = attempts.get(key, 0) + 1
                    running[actor.run.remote(fn, payload)] = (key, payload, actor)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    key, payload, actor = running.pop(ref)
                    try:
                        worker, res = ray.get(ref)
                    except RayActorError as exc:  # the worker process died mid-video
                        fresh = worker_cls.remote(init)
                        actors[actors.index(actor)] = fresh
                        idle.append(fresh)
                        retry_or_fail(key, payload, attempts[key], exc, queue, on_failure)
                        continue
                    except RayTaskError as exc:
                        idle.append(actor)
                        on_failure(key, f"worker failed: {exc}", attempts[key])
                        continue
                    idle.append(actor)
                    if hasattr(res, "stats") and isinstance(res.stats, dict):
                        res.stats["worker"] = worker
                    on_result(key, res, attempts[key])
        finally:
            for a in actors:
                ray.kill(a)
            ray.shutdown()
