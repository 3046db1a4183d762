"""Run the review app: the uvicorn settings ``custodes serve`` uses, and a server in a thread on a free
loopback port (for tests and the load benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def server_config(app: Any, host: str, port: int, trusted_proxy: str | None = None) -> uvicorn.Config:
    """uvicorn settings for the review app. ``X-Forwarded-For`` names the address recorded in the signed audit
    and counted by the login throttle, so it is read only from a proxy the operator named (``trusted_proxy``,
    an address or a comma-separated list); uvicorn's default would trust it from any local client."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning",
                          proxy_headers=bool(trusted_proxy), forwarded_allow_ips=trusted_proxy or "")


@contextmanager
def background_server(app: Any, timeout_s: float = 20.0, trusted_proxy: str | None = None) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, trusted_proxy))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + timeout_s
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the review app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
