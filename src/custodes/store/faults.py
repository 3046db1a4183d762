"""Fault points for tests: ``CUSTODES_FAULT=NAME`` kills the process (SIGKILL, as ``kill -9`` would) when it
reaches the point named NAME. Only tests set it; a point costs one environment look-up."""

from __future__ import annotations

import os
import signal
from typing import BinaryIO


def point(name: str) -> None:
    if os.environ.get("CUSTODES_FAULT") == name:
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
