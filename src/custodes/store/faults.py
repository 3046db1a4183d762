"""Fault points for tests: ``CUSTODES_FAULT=NAME`` kills the process (SIGKILL, as ``kill -9`` would) when it
reaches the point named NAME. Only tests set it; a point costs one environment look-up."""

from __future__ import annotations

import os
import signal
from typing import BinaryIO

_hits: dict[str, int] = {}


def point(name: str) -> None:
    """``CUSTODES_FAULT=NAME@N``: kill the N-th time the point is reached (a group in the middle of a run)."""
    want = os.environ.get("CUSTODES_FAULT")
    if not want:
        return
    if want == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif want.startswith(name + "@"):
        _hits[name] = _hits.get(name, 0) + 1
        if want == f"{name}@{_hits[name]}":
            os.kill(os.getpid(), signal.SIGKILL)


def fail(name: str) -> None:
    """``CUSTODES_FAULT=NAME:error`` makes this point fail as a full disk would."""
    if os.environ.get("CUSTODES_FAULT") == f"{name}:error":
        raise OSError(28, f"No space left on device (injected at {name})")


def torn_write(name: str, fh: BinaryIO, blob: bytes) -> None:
    """``CUSTODES_FAULT=NAME:torn``: write half of ``blob``, then fail as a disk that filled mid-write."""
    if os.environ.get("CUSTODES_FAULT") == f"{name}:torn":
        fh.write(blob[: len(blob) // 2])
        fh.flush()
        raise OSError(28, f"No space left on device (injected at {name})")
